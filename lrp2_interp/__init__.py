"""lrp2_interp: neuron-level interpretability for multilingual language models.

LRP2 (Xu, Li, Xiong, EMNLP 2023) language representation projection on
TransformerLens hook points, typed mLAMA probing, and knowledge neurons
(Dai et al. 2022) computed with Captum integrated gradients.

Importing the package does no work: the public names below are resolved lazily
from their modules on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_API: dict[str, str] = {
    "InputError": "errors",
    "load_model": "models",
    "LanguageModel": "models",
    "resid_post_hook": "models",
    "mlp_post_hook": "models",
    "RandomModelConfig": "tiny",
    "build_random_model": "tiny",
    "load_facts": "mlama",
    "FactSet": "mlama",
    "Fact": "mlama",
    "probe": "probing",
    "ProbeConfig": "probing",
    "ProbeResult": "probing",
    "summarize": "metrics",
    "transferability": "metrics",
    "bootstrap_ci": "metrics",
    "paired_test": "metrics",
    "LanguageVectors": "vectors",
    "compute_language_vectors": "vectors",
    "prompt_corpus": "vectors",
    "LRP2Config": "projection",
    "lrp2_hooks": "projection",
    "lrp2": "projection",
    "SweepConfig": "sweep",
    "run_sweep": "sweep",
    "ExperimentConfig": "experiment",
    "run_experiment": "experiment",
    "AttributionConfig": "attribution",
    "AttributionResult": "attribution",
    "attribute_neurons": "attribution",
    "attribute_many": "attribution",
    "attribute_batch": "attribution_batch",
    "NeuronConfig": "neurons",
    "NeuronSet": "neurons",
    "select_neurons": "neurons",
    "select_grouped": "neurons",
    "overlap_table": "overlap",
    "permutation_control": "overlap",
    "similarity_table": "similarity",
    "causal_effect": "causal",
    "KnowledgeConfig": "knowledge",
    "run_knowledge_analysis": "knowledge",
    "OrganismConfig": "organism",
    "train_organism": "organism",
    "load_organism": "organism",
    "DemoConfig": "demo",
    "run_demo": "demo",
    "ShardStore": "store",
    "embed_hook": "models",
    "shift_point_hook": "models",
    "EMBEDDINGS": "layers",
    "paper_layer": "layers",
    "block_index": "layers",
    "load_corpus": "corpus",
    "ParallelCorpus": "corpus",
    "different_unit_overlap": "overlap",
    "unit_baseline_summary": "overlap",
    "Preset": "presets",
    "get_preset": "presets",
    "check_manifest": "store",
    "results_manifest": "store",
    "shipped_facts_root": "mlama",
    "jaccard": "metrics",
    "check_model_folder": "models",
    "mlp_out_hook": "models",
    "mlp_pre_hook": "models",
    "AlignmentConfig": "alignment",
    "fit_alignment": "alignment",
    "alignment_hooks": "alignment",
    "LapeConfig": "language_neurons",
    "activation_stats": "language_neurons",
    "select_language_neurons": "language_neurons",
    "logit_lens": "logit_lens",
    "CompareConfig": "methods_compare",
    "run_comparison": "methods_compare",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'lrp2_interp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
