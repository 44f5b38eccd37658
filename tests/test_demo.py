"""The one-command demo on the offline organism (slow: trains the organism once, then cached), and its parts."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from lrp2_interp.attribution.attribute import AttributionConfig
from lrp2_interp.cli.main import main
from lrp2_interp.demo import DemoConfig, cross_language_plots, knowledge_row, run_demo
from lrp2_interp.facts import load_facts
from lrp2_interp.lrp2.vectors import compute_language_vectors
from lrp2_interp.neurons.pipeline import KnowledgeConfig, run_knowledge_analysis
from lrp2_interp.prompts import prompt_corpus

# Every test that trains or reuses the default organism lives in this file, so that `pytest -n auto
# --dist loadfile` (CI) runs them on one worker and the organism is trained once.


# ---------------------------------------------------------------- the default organism
@pytest.mark.slow
def test_default_organism_knows_english_facts():
    """Trains the default organism into the shared cache ($LRP2_CACHE), which the demo and notebooks reuse."""
    from lrp2_interp.organism.organism_config import OrganismConfig
    from lrp2_interp.organism.train import load_organism, organism_facts
    from lrp2_interp.probing.probe import ProbeConfig, probe

    lm, info = load_organism(OrganismConfig(), progress=False)  # ~3-8 min on 2 cores, then cached
    split = organism_facts(info)
    en = probe(lm, next(iter(split.values())).held_out, "en", ProbeConfig())
    assert en.accuracy >= 80.0


@pytest.mark.slow
def test_demo_command_writes_results_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--languages", "fr", "ru", "--out", str(out)]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["language"]) == ["en", "fr", "ru"]
    for col in (
        "acc_baseline",
        "acc_chosen",
        "gain",
        "control_gain_mean",
        "chosen_m",
        "jaccard_baseline",
        "jaccard_lrp2",
        "rel_same_baseline",
        "rel_diff_baseline",
        "rel_same_lrp2",
        "rel_diff_lrp2",
        "rel_chance",
    ):
        assert col in summary.columns
    md = (out / "summary.md").read_text()
    assert "| fr |" in md and "trained in" in md and "Table 2" in md
    for name in (
        "heatmap_shared_neurons_baseline.png",
        "heatmap_overlap_gain.png",
        "similarity.png",
        "lrp2/search_fr.csv",
        "lrp2/facts_ru.parquet",
        "neurons/ru/permutation_control.csv",
        "neurons/fr/causal.csv",
        "neurons/fr/relation_overlap_summary.csv",
        "neurons/fr/heatmap_relation_overlap.png",
    ):
        assert (out / name).is_file(), name
    # English sees every fact: the organism must have learned them (a broken training run fails here)
    en = summary.set_index("language").loc["en"]
    assert en["acc_baseline"] > 50.0
    assert en["acc_baseline_low"] <= en["acc_baseline"] <= en["acc_baseline_high"]  # numbers, not "12.3 [10.1, 14.5]"
    fr = summary.set_index("language").loc["fr"]
    assert f"{fr['gain']:.1f} [{fr['gain_low']:.1f}, {fr['gain_high']:.1f}]" in md
    assert "results written to" in capsys.readouterr().out


@pytest.mark.usefixtures("single_thread")
def test_demo_rows_and_cross_language_figures_come_from_the_typed_results(bert_lm, fixture_facts_root, tmp_path):
    langs = ("fr", "ru")
    facts = load_facts(fixture_facts_root, ["en", *langs], ["P36"]).parallel()
    vectors = compute_language_vectors(bert_lm, {lg: prompt_corpus(facts, lg, bert_lm) for lg in ("en", *langs)})
    results = []
    for lang in langs:
        cfg = KnowledgeConfig(
            languages=(lang,),
            lrp2={lang: (0, 2)},
            attribution=AttributionConfig(n_steps=4),
            n_perm=20,
            n_boot=20,
            chunk=3,
            causal=None,
        )
        results.append(run_knowledge_analysis(bert_lm, facts, vectors, cfg, tmp_path / lang))
    # the numbers the demo used to read back from the files it had just written
    row = knowledge_row(results[0])
    ov = pd.read_csv(tmp_path / "fr" / "overlap_summary.csv").query("value == 'jaccard'").set_index("condition")
    ctl = pd.read_csv(tmp_path / "fr" / "permutation_summary.csv").set_index("condition")
    assert row["language"] == "fr" and row["kn_facts"] == facts.n_facts("fr")
    assert row["jaccard_baseline"] == pytest.approx(ov.loc["baseline", "mean"], rel=1e-12, nan_ok=True)
    assert row["jaccard_lrp2"] == pytest.approx(ov.loc["lrp2", "mean"], rel=1e-12, nan_ok=True)
    assert row["chance_jaccard"] == pytest.approx(ctl.loc["baseline", "chance_jaccard"], rel=1e-12, nan_ok=True)
    assert row["share_units_above_chance"] == ctl.loc["baseline", "share_above_chance"]
    # one heatmap function per figure: the demo's cross-language figures are plots' (layer x language)
    out = tmp_path / "demo"
    cross_language_plots(results, out)
    for name in ("heatmap_shared_neurons_baseline", "heatmap_shared_neurons_lrp2", "heatmap_overlap_gain"):
        both = pd.read_csv(out / f"{name}.csv")
        assert list(both.columns) == ["layer", *langs], name
        for lang in langs:
            alone = pd.read_csv(tmp_path / lang / f"{name}.csv")
            pd.testing.assert_series_equal(both[lang], alone[lang], obj=f"{name} {lang}")
    sim = pd.read_csv(out / "similarity.csv")
    assert set(sim["language"]) == set(langs) and len(sim) == sum(len(r.similarity.table) for r in results)


@pytest.mark.usefixtures("single_thread")
def test_demo_defaults_to_the_held_out_design_and_runs_neurons_at_the_chosen_pair(repo_model_dir, tmp_path):
    """The demo's LRP2 stage searches (m, n) on dev facts by successive halving, probes test facts only at the
    baseline, the choice and its controls, and its knowledge-neuron stage runs at each language's chosen pair."""
    import json

    model = str(repo_model_dir("gpt2", n_layers=4))
    cfg = DemoConfig(
        model=model,
        languages=("fr", "es"),
        max_facts_per_relation=6,
        max_candidates=5,
        kn_facts_per_relation=1,
        n_steps=2,
        target_delta=None,
        n_boot=20,
        n_perm=20,
    )
    assert cfg.design == "heldout" and cfg.search == "halving"
    out = tmp_path / "demo"
    summary = run_demo(cfg, out, progress=False).summary.set_index("language")
    assert list(summary.index) == ["en", "fr", "es"]
    for lang, wrong in (("fr", "es"), ("es", "fr")):
        facts = pd.read_parquet(out / "lrp2" / f"facts_{lang}.parquet")
        assert set(facts.loc[facts["split"] == "test", "condition"]) == {
            "baseline",
            "chosen",
            "source baseline",
            *(f"matched control {k}" for k in range(5)),
            f"wrong language ({wrong})",
        }
        search = pd.read_csv(out / "lrp2" / f"search_{lang}.csv")
        assert search["rung"].nunique() > 1  # successive halving
        pair = [int(summary.loc[lang, "chosen_m"]), int(summary.loc[lang, "chosen_n"])]
        assert summary.loc[lang, "chosen"] == f"({pair[0]}, {pair[1]})"
        kn = json.loads((out / "neurons" / lang / "manifest.json").read_text())
        assert kn["config"]["lrp2"][lang] == pair
    disk = pd.read_csv(out / "summary.csv", dtype=str, keep_default_na=False)  # English has no pair: integers
    en_m, *target_m = disk["chosen_m"]
    assert en_m == "" and all(v.lstrip("-").isdigit() for v in target_m)
    md = (out / "summary.md").read_text()
    assert "| fr |" in md and "held-out (chosen on dev facts)" in md
    assert (out / "knowledge_neurons.csv").is_file() and "Table 2" in md
    # the gallery: every figure under the folder once, the demo's own first, each with a relative link
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (out / "figures.md").read_text(encoding="utf-8"))
    assert sorted(links) == sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert links[:4] == [
        "heatmap_shared_neurons_baseline.png",
        "heatmap_shared_neurons_lrp2.png",
        "heatmap_overlap_gain.png",
        "similarity.png",
    ]
    assert "neurons/fr/heatmap_relation_overlap.png" in links and (out / "neurons" / "fr" / "figures.md").is_file()
