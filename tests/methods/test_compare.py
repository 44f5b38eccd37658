"""LRP2 vs alignment vs LAPE steering on the same facts: split, choice on dev, resumability, CLI commands."""

from __future__ import annotations

import pandas as pd
import pytest

from lrp2_interp.cli.main import REPO_DATA, main
from lrp2_interp.errors import InputError
from lrp2_interp.methods.compare import (
    CompareConfig,
    plot_grids,
    run_comparison,
    summary_markdown,
)
from lrp2_interp.models.loading import load_model
from lrp2_interp.probing.api import ProbeConfig, probe
from lrp2_interp.store import ShardStore

pytestmark = pytest.mark.usefixtures("single_thread")

FACT_ARGS = ["--facts", str(REPO_DATA), "--relations", "P36", "P30", "--max-facts", "8"]


@pytest.fixture(scope="module", params=["bert", "gemma3"])
def lm(request, tiny_model_dir):
    return load_model(tiny_model_dir(request.param))


def test_comparison_same_facts_choice_on_dev_and_resume(lm, fixture_facts, tmp_path):
    cfg = CompareConfig("fr", sigmas=(-0.5, 0.5), strengths=(1.0,), n_boot=50, lrp2_layers=(0, 2))
    res = run_comparison(lm, fixture_facts, cfg, tmp_path, progress=False)
    facts = fixture_facts.parallel(["en", "fr"])
    dev, _ = facts.split(0.5, seed=0)
    assert res.dev_ids == frozenset(dev.lineids("fr"))  # the split of sweep.py
    # every condition is probed on the same facts
    sizes = res.facts_table.groupby(["method", "param", "control"]).size()
    assert (sizes == facts.n_facts("fr")).all()
    base = probe(lm, facts, "fr", ProbeConfig()).table
    got = res.facts_table[res.facts_table["method"] == "baseline"]
    assert got["correct"].tolist() == base["correct"].tolist()
    s = res.summary.set_index("method")
    assert s.index[0] == "baseline" and len(s) == 4
    # the chosen alignment sigma is the best on dev
    grid = res.grid("alignment")
    dev_best = grid[grid["split"] == "dev"].sort_values(["acc", "param"], ascending=[False, True]).iloc[0]
    row = s.loc["learned alignment (INCLINE, Wang et al. 2025)"]
    assert row["dev_acc"] == pytest.approx(dev_best["acc"])
    assert "| baseline |" in summary_markdown(res)
    pair = res.lrp2_config()
    assert f"m{pair.m}_n{pair.n}" == res.chosen("lrp2") and pair.m < pair.n
    assert {p.name for p in plot_grids(res, tmp_path)} == {
        "lrp2_dev_gain_fr.png",
        "alignment_sigma_fr.png",
        "lape_strength_fr.png",
    }
    # resuming: every unit is a stored shard and a rerun recomputes nothing
    keys = ShardStore(tmp_path).keys()
    assert len(keys) == 1 + 1 + 1 + 2 + 1 + 2 + 1
    again = run_comparison(lm, fixture_facts, cfg, tmp_path, progress=False)
    pd.testing.assert_frame_equal(again.facts_table, res.facts_table)


def test_sigma_zero_is_the_baseline_and_fit_facts_must_exclude_test(gpt2_lm, fixture_facts, tmp_path):
    cfg = CompareConfig("fr", methods=("alignment",), sigmas=(0.0,), n_boot=20)
    res = run_comparison(gpt2_lm, fixture_facts, cfg, tmp_path, progress=False)
    t = res.facts_table
    zero = t[(t["method"] == "alignment") & ~t["control"]]
    assert zero["correct"].tolist() == t[t["method"] == "baseline"]["correct"].tolist()
    row = res.summary.set_index("key").loc["alignment"]
    assert row["chosen_on_dev"] == "sigma=+0.00" and row["test_gain"].value == 0.0
    with pytest.raises(InputError, match="test facts"):
        run_comparison(gpt2_lm, fixture_facts, cfg, tmp_path / "leak", fit_facts=fixture_facts, progress=False)


def test_bad_config(lm, fixture_facts, tmp_path):
    with pytest.raises(InputError, match="sigmas"):
        run_comparison(lm, fixture_facts, CompareConfig("fr", sigmas=(2.0,)), tmp_path)
    with pytest.raises(InputError, match="method"):
        run_comparison(lm, fixture_facts, CompareConfig("fr", methods=("x",)), tmp_path)
    with pytest.raises(InputError, match="need 'de'"):
        run_comparison(lm, fixture_facts, CompareConfig("de"), tmp_path)


def test_cli_commands(repo_model_dir, tmp_path, capsys):
    model = str(repo_model_dir("gpt2"))
    out = tmp_path / "cmp"
    assert (
        main(
            [
                "compare",
                "--model",
                model,
                "--languages",
                "fr",
                *FACT_ARGS,
                "--sigmas",
                "-0.5",
                "0.5",
                "--strengths",
                "1.0",
                "--n-boot",
                "20",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 4 and (out / "fr" / "alignment_sigma_fr.png").is_file()
    # estimates are numbers (value, low, high), not "12.3 [10.1, 14.5]" strings
    assert {"test_acc", "test_acc_low", "test_acc_high"} <= set(summary.columns)
    assert summary["test_acc"].dtype.kind == "f"
    assert (summary["test_acc_low"] <= summary["test_acc"]).all() and (
        summary["test_acc"] <= summary["test_acc_high"]
    ).all()
    assert (
        main(
            [
                "align",
                "--model",
                model,
                "--languages",
                "fr",
                *FACT_ARGS,
                "--site",
                "resid",
                "--sigmas",
                "0.5",
                "--n-boot",
                "20",
                "--out",
                str(tmp_path / "al"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "lape",
                "--model",
                model,
                "--languages",
                "en",
                "fr",
                "zh",
                *FACT_ARGS,
                "--top-rate",
                "0.05",
                "--kn-facts",
                "2",
                "--lrp2",
                "0",
                "2",
                "--out",
                str(tmp_path / "lape"),
            ]
        )
        == 0
    )
    for name in (
        "deactivation.csv",
        "deactivation.png",
        "knowledge_overlap.csv",
        "lrp2_activation_shift.csv",
        "neurons_per_layer.png",
    ):
        assert (tmp_path / "lape" / name).is_file(), name
    assert (
        main(
            [
                "lens",
                "--model",
                model,
                "--languages",
                "fr",
                *FACT_ARGS,
                "--lrp2",
                "0",
                "2",
                "--include-same-token",
                "--out",
                str(tmp_path / "lens"),
            ]
        )
        == 0
    )
    lens = pd.read_csv(tmp_path / "lens" / "lens_fr_facts.csv")  # per fact and layer, next to the plotted curve
    assert set(lens["condition"]) == {"baseline", "lrp2"} and {"lineid", "p_target", "p_source"} <= set(lens.columns)
    assert (tmp_path / "lens" / "lens_fr.png").is_file() and (tmp_path / "lens" / "lens_fr.csv").is_file()
    assert (
        main(
            [
                "compare",
                "--model",
                model,
                "--languages",
                "fr",
                *FACT_ARGS,
                "--sigmas",
                "3",
                "--out",
                str(tmp_path / "bad"),
            ]
        )
        == 2
    )
    assert "sigmas" in capsys.readouterr().err
