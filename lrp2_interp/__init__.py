"""lrp2_interp: neuron-level interpretability for multilingual language models.

LRP2 (Xu, Li, Xiong, EMNLP 2023) language representation projection on
TransformerLens hook points, typed mLAMA probing, and knowledge neurons
(Dai et al. 2022) computed with Captum integrated gradients.

Importing the package does no work: the public names below are resolved lazily
from their modules on first access, and so are the subpackages (``lx.plots``).
One import reaches what an analysis needs::

    import lrp2_interp as lx

    lm = lx.load_model("gemma-3-270m")
    facts = lx.load_facts(languages=["en", "fr"])  # the shipped facts
    vec = lx.language_vectors(lm, facts)
    with lx.apply_lrp2(lm, vec, "fr", lx.LRP2Config(m=4, n=13)):
        print(lx.probe(lm, facts, "fr").accuracy)

No public name is also the name of a module of the package (``lrp2`` is the LRP2
subpackage; its context manager is :func:`apply_lrp2`).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_API: dict[str, str] = {
    "InputError": "errors",
    "load_model": "models.loading",
    "LanguageModel": "models.loading",
    "resid_post_hook": "models.hooks",
    "mlp_post_hook": "models.hooks",
    "RandomModelConfig": "models.builders",
    "build_random_model": "models.builders",
    "load_facts": "facts",
    "FactSet": "facts",
    "Fact": "facts",
    "probe": "probing.probe",
    "ProbeConfig": "probing.probe",
    "ProbeResult": "probing.probe",
    "QuerySet": "probing.query_set",
    "summarize": "metrics",
    "transferability": "metrics",
    "bootstrap_ci": "metrics",
    "paired_test": "metrics",
    "LanguageVectors": "lrp2.vectors",
    "compute_language_vectors": "lrp2.vectors",
    "prompt_corpus": "prompts",
    "LRP2Config": "lrp2.projection",
    "lrp2_hooks": "lrp2.projection",
    "apply_lrp2": "lrp2.front",
    "language_vectors": "lrp2.front",
    "SweepConfig": "lrp2.sweep",
    "run_sweep": "lrp2.sweep",
    "ExperimentConfig": "lrp2.full_grid",
    "run_experiment": "interventions.experiment",
    "heldout_experiment": "interventions.experiment",
    "full_grid": "lrp2.full_grid",
    "ExperimentResult": "lrp2.full_grid",
    "run_full_grid": "lrp2.full_grid",
    "HeldoutResult": "interventions.experiment",
    "AttributionConfig": "attribution.ig_config",
    "AttributionResult": "attribution.ig_config",
    "attribute_neurons": "attribution.attribute",
    "attribute_many": "attribution.attribute",
    "attribute_batch": "attribution.batch",
    "NeuronConfig": "neurons.neuron_config",
    "NeuronSet": "neurons.sets",
    "select_neurons": "neurons.neuron_selection",
    "select_grouped": "neurons.neuron_selection",
    "overlap_table": "neurons.overlap",
    "OverlapResult": "neurons.overlap",
    "ControlResult": "neurons.control",
    "SimilarityResult": "lrp2.similarity",
    "CausalResult": "neurons.causal",
    "permutation_control": "neurons.control",
    "similarity_table": "lrp2.similarity",
    "causal_effect": "neurons.causal",
    "KnowledgeConfig": "neurons.pipeline",
    "run_knowledge_analysis": "neurons.pipeline",
    "knowledge_analysis": "neurons.pipeline",
    "OrganismConfig": "organism.organism_config",
    "train_organism": "organism.train",
    "load_organism": "organism.train",
    "DemoConfig": "demo",
    "run_demo": "demo",
    "compute_demo": "demo",
    "DemoResult": "demo",
    "ShardStore": "store",
    "MemoryStore": "store",
    "embed_hook": "models.hooks",
    "shift_point_hook": "models.hooks",
    "EMBEDDINGS": "layers",
    "paper_layer": "layers",
    "block_index": "layers",
    "load_corpus": "corpus",
    "ParallelCorpus": "corpus",
    "different_unit_overlap": "neurons.overlap",
    "unit_baseline_summary": "neurons.control",
    "Preset": "presets",
    "get_preset": "presets",
    "check_manifest": "manifest",
    "results_manifest": "manifest",
    "shipped_facts_root": "facts",
    "jaccard": "metrics",
    "check_model_folder": "models.loading",
    "mlp_out_hook": "models.hooks",
    "mlp_pre_hook": "models.hooks",
    "AlignmentConfig": "methods.alignment",
    "fit_alignment": "methods.alignment",
    "alignment_hooks": "methods.alignment",
    "LapeConfig": "methods.lape",
    "activation_stats": "methods.lape",
    "select_language_neurons": "methods.lape",
    "logit_lens": "methods.logit_lens",
    "CompareConfig": "methods.compare",
    "run_comparison": "methods.compare",
    "attribution_queries": "prompts",
    "fact_sentences": "prompts",
    "attribute_fact": "attribution.attribute",
    "SweepResult": "lrp2.sweep",
    "SimilarityConfig": "lrp2.similarity",
    "similarity_by_layer": "lrp2.similarity",
    "overlap_by_layer": "neurons.overlap",
    "overlap_gain": "neurons.overlap",
    "summarize_overlap": "neurons.overlap",
    "CausalConfig": "neurons.causal",
    "KnowledgeResult": "neurons.pipeline",
    "layer_labels": "layers",
    "heatmap": "plots",
    "line_plot": "plots",
    "shared_neurons_heatmap": "plots",
    "overlap_gain_heatmap": "plots",
    "relation_overlap_heatmap": "plots",
    "attribution_heatmap": "plots",
    "similarity_plot": "plots",
    "draw_heatmap": "drawing",
    "draw_lines": "drawing",
    "draw_shared_neurons": "figures",
    "draw_overlap_gain": "figures",
    "draw_relation_overlap": "figures",
    "draw_attribution": "figures",
    "draw_similarity": "figures",
    "draw_control": "figures",
    "draw_causal": "figures",
    "draw_sweep_gain": "figures",
    "axes_grid": "drawing",
    "draw_real_size_gains": "heldout_figures",
    "draw_halving_search": "heldout_figures",
    "draw_real_size_trans": "heldout_figures",
    "read_real_size": "real_size",
    "RealSizeResults": "real_size",
    "SelectionConfig": "interventions.selection",
    "SelectionResult": "interventions.selection",
    "LRP2Intervention": "interventions.language_projection",
    "Comparison": "methods.compare",
    "MethodOptions": "methods.registry",
    "build_interventions": "methods.registry",
    "lens_curve": "methods.logit_lens",
    "draw_lens": "methods.logit_lens",
    "attributable_relations": "neurons.pipeline",
    "estimate_columns": "metrics",
}

__all__ = list(_API) + ["__version__"]  # dir() sorts


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(f"{__name__}.{_API[name]}"), name)
    if (
        not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None
    ):  # a subpackage or module, e.g. lx.plots
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'lrp2_interp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
