"""The comparison takes intervention objects: one held-out routine each, one summary, any class of the protocol."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd
import pytest
import torch

from lrp2_interp.cli.main import REPO_DATA, main
from lrp2_interp.errors import InputError
from lrp2_interp.facts import load_facts, shipped_facts_root
from lrp2_interp.interventions.language_projection import LRP2Intervention
from lrp2_interp.interventions.selection import BASELINE, SelectionConfig
from lrp2_interp.methods.compare import CompareConfig, plot_grids, run_comparison, summary_markdown
from lrp2_interp.methods.mean_steering import MeanSteering
from lrp2_interp.methods.registry import METHODS, MethodOptions, build_interventions
from lrp2_interp.models.hooks import resid_post_hook
from lrp2_interp.models.loading import load_model

pytestmark = pytest.mark.usefixtures("single_thread")

FACT_ARGS = ["--facts", str(REPO_DATA), "--relations", "P36", "P30", "--max-facts", "8"]


@pytest.fixture(scope="module")
def lm(repo_model_dir):
    return load_model(str(repo_model_dir("gpt2", n_layers=4)))


@pytest.fixture(scope="module")
def facts():
    return load_facts(shipped_facts_root(), ["en", "fr"], max_facts_per_relation=4)


SMALL = CompareConfig(SelectionConfig(max_dev=8, max_test=8, first_rung=4, n_controls=2), n_boot=20)


@dataclass(frozen=True, eq=False)
class ScaleResidual:
    """Defined only here: scales the residual stream after block 0 (a class the comparison never saw)."""

    language: str
    source: str = "en"
    name: str = "scale_resid"
    title: str = "residual scaling (test only)"
    calls: list = field(default_factory=list)

    def settings(self):
        return [1.0, 0.0]

    def fit(self, lm, facts):
        self.calls.append(("fit", facts.n_facts(self.language)))
        return self

    def _hooks(self, factor):
        return [] if factor == 1.0 else [(resid_post_hook(0), lambda x, hook=None: x * factor)]

    def hooks(self, setting):
        self.calls.append(("hooks", setting))
        return self._hooks(setting)

    def control(self, setting, seed):
        self.calls.append(("control", seed))
        return self._hooks(1.0)  # the identity: its gain is exactly 0

    def extra_controls(self, setting):
        return {"identity control": self._hooks(1.0)}

    def label(self, setting):
        return f"x{setting:g}"


def test_a_class_defined_only_in_the_test_runs_without_any_edit_to_the_comparison(lm, facts, tmp_path):
    mine = ScaleResidual("fr")
    res = run_comparison(lm, facts, [mine], SMALL)
    (row,) = res.summary.to_dict("records")
    assert row["method"] == "scale_resid" and row["title"] == mine.title
    assert ("control", 0) in mine.calls and ("control", 1) in mine.calls and ("fit", 8) in mine.calls
    assert {("hooks", 1.0), ("hooks", 0.0)} <= set(mine.calls)
    assert row["control_gain_mean"] == 0.0 and row["identity control"].value == 0.0
    search = res.grid("scale_resid")
    assert set(search["setting"]) == {"x1", "x0"} and res.chosen("scale_resid") in (1.0, 0.0)
    if res.chosen("scale_resid") == 1.0:  # the identity chosen: no gain, by construction
        assert row["gain"].value == 0.0
    assert "residual scaling (test only)" in summary_markdown(res)
    assert [p.name for p in plot_grids(res, tmp_path)] == ["scale_resid_dev_search_fr.png"]


def test_a_comparison_computes_and_its_save_writes(lm, facts, tmp_path):
    res = run_comparison(lm, facts, [ScaleResidual("fr")], SMALL)
    assert not any(tmp_path.iterdir())  # computing writes nothing
    folder = res.save(tmp_path / "fr")
    names = {p.name for p in folder.iterdir()}
    assert {"conditions.csv", "search.csv", "scale_resid_dev_search_fr.png"} <= names
    assert len(pd.read_csv(folder / "conditions.csv")) == len(res.facts_table)
    assert set(pd.read_csv(folder / "search.csv")["method"]) == {"scale_resid"}


def test_lrp2_and_mean_steering_share_the_split_and_the_baseline(lm, facts):
    inters = [
        LRP2Intervention.for_model(lm, "fr", layers=(0, 2)),
        MeanSteering("fr", layers=(0, 2), alphas=(1.0,)),
    ]
    res = run_comparison(lm, facts, inters, SMALL)
    assert res.summary["method"].tolist() == ["lrp2", "mean_steering"]
    a, b = res.result("lrp2"), res.result("mean_steering")
    pd.testing.assert_series_equal(a.correct(BASELINE), b.correct(BASELINE))  # same test facts, same pools
    assert res.chosen("lrp2") == (0, 2) and res.chosen("mean_steering") in ((0, 1.0), (2, 1.0))
    t = res.facts_table
    assert set(t["method"]) == {"lrp2", "mean_steering"}
    for r in (a, b):  # the chosen setting is the best of the last rung
        last = r.search[r.search["rung"] == r.search["rung"].max()]
        assert r.chosen_label == last.iloc[0]["setting"]


def test_registry_builds_every_method_and_refuses_unknown_names(lm):
    built = build_interventions(lm, "fr", METHODS, MethodOptions(lrp2_layers=(0, 1), alphas=(1.0,)))
    assert [i.name for i in built] == ["lrp2", "alignment", "lape", "mean_steering", "kn_scaling"]
    assert all(i.language == "fr" for i in built)
    with pytest.raises(InputError, match="unknown method"):
        build_interventions(lm, "fr", ["nope"])


def test_bad_input(lm, facts):
    with pytest.raises(InputError, match="no interventions"):
        run_comparison(lm, facts, [], SMALL)
    with pytest.raises(InputError, match="share a name"):
        run_comparison(lm, facts, [ScaleResidual("fr"), ScaleResidual("fr")], SMALL)
    with pytest.raises(InputError, match="'de'"):
        run_comparison(lm, facts, [ScaleResidual("de")], SMALL)
    with pytest.raises(InputError, match="sigmas"):
        build_interventions(lm, "fr", ["alignment"], MethodOptions(sigmas=(2.0,)))
    with pytest.raises(InputError, match="n_boot"):
        CompareConfig(n_boot=0)


def test_alignment_sigma_zero_is_the_baseline(lm, facts):
    (inter,) = build_interventions(lm, "fr", ["alignment"], MethodOptions(sigmas=(0.0,)))
    res = run_comparison(lm, facts, [inter], SMALL)
    (row,) = res.summary.to_dict("records")
    assert row["chosen"] == "sigma=+0.00" and row["gain"].value == 0.0 and row["control_gain_mean"] == 0.0


def test_lape_control_keeps_per_layer_counts(lm, facts):
    (inter,) = build_interventions(lm, "fr", ["lape"], MethodOptions(strengths=(1.0,)))
    fitted = inter.fit(lm, facts)
    ctl = fitted.control_neurons(3)
    for g, m in fitted.neurons.masks.items():
        assert torch.equal(ctl.masks[g].sum(1), m.sum(1))
    assert fitted.label(("to_source", 1.0)) == "to_source@1.00"


def test_cli_commands(repo_model_dir, tmp_path, capsys):
    model = str(repo_model_dir("gpt2"))
    small = ["--max-dev", "6", "--max-test", "6", "--n-controls", "2", "--n-boot", "20"]
    out = tmp_path / "cmp"
    argv = ["compare", "--model", model, "--languages", "fr", *FACT_ARGS, *small]
    assert main([*argv, "--methods", "lrp2", "mean_steering", "--layers", "0", "2", "--out", str(out)]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert summary["method"].tolist() == ["lrp2", "mean_steering"]
    # estimates are numbers (value, low, high), not "12.3 [10.1, 14.5]" strings
    assert {"gain", "gain_low", "gain_high", "acc_chosen"} <= set(summary.columns)
    assert summary["gain"].dtype.kind == "f" and (summary["gain_low"] <= summary["gain_high"]).all()
    assert "difference-in-means steering" in (out / "summary.md").read_text()
    assert (out / "fr" / "mean_steering_dev_search_fr.png").is_file() and (out / "fr" / "search.csv").is_file()
    al = ["align", "--model", model, "--languages", "fr", *FACT_ARGS, *small, "--site", "resid", "--sigmas", "0.5"]
    assert main([*al, "--out", str(tmp_path / "al")]) == 0
    assert pd.read_csv(tmp_path / "al" / "summary.csv")["method"].tolist() == ["alignment"]
    lape = ["lape", "--model", model, "--languages", "en", "fr", "zh", *FACT_ARGS, "--top-rate", "0.05"]
    assert main([*lape, "--kn-facts", "2", "--lrp2", "0", "2", "--out", str(tmp_path / "lape")]) == 0
    for name in ("deactivation.csv", "knowledge_overlap.csv", "lrp2_activation_shift.csv", "neurons_per_layer.png"):
        assert (tmp_path / "lape" / name).is_file(), name
    lens = ["lens", "--model", model, "--languages", "fr", *FACT_ARGS, "--lrp2", "0", "2", "--include-same-token"]
    assert main([*lens, "--out", str(tmp_path / "lens")]) == 0
    table = pd.read_csv(tmp_path / "lens" / "lens_fr_facts.csv")  # per fact and layer, next to the plotted curve
    assert set(table["condition"]) == {"baseline", "lrp2"} and {"lineid", "p_target", "p_source"} <= set(table.columns)
    assert main([*argv, "--sigmas", "3", "--out", str(tmp_path / "bad")]) == 2
    assert "sigmas" in capsys.readouterr().err


def test_two_methods_share_their_pairs_pools_and_baselines_with_the_same_numbers(lm, facts, pool_count, monkeypatch):
    """Per language pair the candidate pools are drawn once and the baseline and the source's baseline
    scored once, for every method (regression: each method drew and scored them again); every table
    equals each method's comparison run alone."""
    from lrp2_interp.interventions.scoring import Scorer
    from lrp2_interp.interventions.selection import SOURCE

    def methods():
        return [LRP2Intervention.for_model(lm, "fr", layers=(0, 2)), ScaleResidual("fr")]

    alone = [run_comparison(lm, facts, [m], SMALL) for m in methods()]
    scored: Counter = Counter()
    compute = Scorer._compute

    def counted(self, language, conds, chunk):
        scored.update((language, c, k) for c in conds for k in chunk)
        return compute(self, language, conds, chunk)

    monkeypatch.setattr(Scorer, "_compute", counted)
    pool_count.clear()
    both = run_comparison(lm, facts, methods(), SMALL)
    assert set(pool_count) == {(lang, rel) for lang in ("en", "fr") for rel in facts.relations}
    assert set(pool_count.values()) == {1}
    shared = {key: n for key, n in scored.items() if key[1] in (BASELINE, SOURCE)}
    work = both.results[0].work
    assert len(shared) == work["n_dev"] + 2 * work["n_test"] and set(shared.values()) == {1}
    for got, one in zip(both.results, alone):
        pd.testing.assert_frame_equal(got.facts_table, one.results[0].facts_table)
        pd.testing.assert_frame_equal(got.search, one.results[0].search)
    pd.testing.assert_frame_equal(both.to_frame(), pd.concat([a.to_frame() for a in alone], ignore_index=True))
    saved = work["n_dev"] + 2 * work["n_test"]  # the second method scores no baseline
    assert both.results[1].work["fact_conditions"] == alone[1].results[0].work["fact_conditions"] - saved
