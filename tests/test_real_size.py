"""A real-size run's folder read back (``lx.read_real_size``) and the held-out figures drawn from it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lrp2_interp as lx
from lrp2_interp.errors import InputError
from lrp2_interp.heldout_figures import gains_table
from lrp2_interp.metrics import Estimate

#: two languages as benchmarks/real_scale.py writes them: each row has its own wrong-language column
SUMMARY = pd.DataFrame(
    {
        "language": ["fr", "zh"],
        "method": ["lrp2", "lrp2"],
        "chosen": ["(4, 13)", "(-1, 7)"],
        "n_dev": [200, 200],
        "n_test": [500, 480],
        "acc_baseline": [40.0, 30.0],
        "acc_baseline_low": [35.0, 26.0],
        "acc_baseline_high": [44.0, 34.0],
        "gain": [3.2, -1.0],
        "gain_low": [1.0, -3.5],
        "gain_high": [5.5, 1.4],
        "gain_fact_ci": [3.2, -1.0],
        "gain_fact_ci_low": [1.2, -3.0],
        "gain_fact_ci_high": [5.2, 1.0],
        "gain_relation_ci": [3.2, -1.0],
        "gain_relation_ci_low": [-0.5, -4.0],
        "gain_relation_ci_high": [7.0, 2.5],
        "p_mcnemar": [0.004, 0.41],
        "p_relation": [0.06, 0.55],
        "control_gain_mean": [-2.0, -6.0],
        "control_gain_min": [-3.0, -6.0],
        "control_gain_max": [-1.0, -6.0],
        "control_gains": ["-3.0 -1.0 -2.0", "-6.0"],
        "wrong language (nl)": [0.8, np.nan],
        "wrong language (nl)_low": [-1.0, np.nan],
        "wrong language (nl)_high": [2.6, np.nan],
        "trans_baseline": [50.0, 35.0],
        "trans_baseline_low": [46.0, 31.0],
        "trans_baseline_high": [54.0, 39.0],
        "trans_chosen": [53.0, 35.0],
        "trans_chosen_low": [49.0, 31.0],
        "trans_chosen_high": [57.0, 39.0],
        "wrong language (es)": [np.nan, -2.0],
        "wrong language (es)_low": [np.nan, -4.0],
        "wrong language (es)_high": [np.nan, 0.0],
    }
)


def search_table(settings: int = 9, first: int = 16) -> pd.DataFrame:
    """A halving search: 9 settings on 16 facts, the best 3 on 48, the best of those chosen."""
    rows = [
        {"rung": 0, "setting": f"({k}, {k + 1})", "n_dev": first, "dev_acc": 10.0 * (k % 5), "kept": False}
        for k in range(settings)
    ]
    top = sorted(rows, key=lambda r: -r["dev_acc"])[:3]
    for r in top:
        r["kept"] = True
    rows += [
        {"rung": 1, "setting": r["setting"], "n_dev": 3 * first, "dev_acc": r["dev_acc"] - i, "kept": i == 0}
        for i, r in enumerate(top)
    ]
    return pd.DataFrame(rows).assign(dev_mrr=0.5)


@pytest.fixture
def folder(tmp_path):
    SUMMARY.to_csv(tmp_path / "summary.csv", index=False)
    for lang in ("fr", "zh"):
        search_table().to_csv(tmp_path / f"search_{lang}.csv", index=False)
    facts = pd.DataFrame(
        {
            "split": ["dev"] * 4 + ["test"] * 2,
            "language": ["fr"] * 6,
            "condition": ["baseline"] * 4 + ["chosen"] * 2,
            "relation": ["P1"] * 6,
            "lineid": [1, 2, 3, 4, 5, 6],
            "correct": [True, False, False, False, True, True],
        }
    )
    facts.to_parquet(tmp_path / "facts_fr.parquet")
    (tmp_path / "summary.md").write_text(
        "# Real-size held-out LRP2: gemma-3-270m\n\n2 languages; wall 1 min.\n\n| a |\n"
    )
    return tmp_path


@pytest.fixture(autouse=True)
def _close_figures():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def test_the_folder_reads_back_as_one_result(folder):
    res = lx.read_real_size(folder)
    assert res.languages == ("fr", "zh") and set(res.searches) == {"fr", "zh"} and set(res.facts) == {"fr"}
    assert res.description == "Real-size held-out LRP2: gemma-3-270m\n\n2 languages; wall 1 min."
    assert res.dev_baseline("fr") == 25.0 and res.dev_baseline("zh") is None
    head = res.headline().set_index("language")
    assert head.at["fr", "test gain [exact CI]"] == "+3.2 [+1.0, +5.5]"
    assert head.at["fr", "relation CI"] == "[-0.5, +7.0]"
    assert head.at["fr", "wrong language"] == "+0.8 (nl)" and head.at["zh", "wrong language"] == "-2.0 (es)"
    assert head.at["zh", "matched controls"] == "-6.0"  # one draw: the CSV reads it as a number
    assert head.at["fr", "Trans before -> after"] == "50.0 -> 53.0"


def test_missing_files_are_refused_in_one_line(tmp_path, folder):
    with pytest.raises(InputError, match="no results folder"):
        lx.read_real_size(tmp_path / "absent")
    (folder / "search_zh.csv").unlink()
    with pytest.raises(InputError, match="no dev search table for 'zh'"):
        lx.read_real_size(folder)
    (folder / "summary.csv").unlink()
    with pytest.raises(InputError, match=r"no summary\.csv"):
        lx.read_real_size(folder)


def test_the_forest_plot_draws_each_interval_and_control(folder):
    ax = lx.read_real_size(folder).plot()
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    controls = lines["matched-control draws (each a test gain)"]
    assert sorted(controls.get_xdata()) == [-6.0, -3.0, -2.0, -1.0]
    wrong = lines["wrong-language control (exact CI)"]
    assert list(wrong.get_xdata()) == [0.8, -2.0]
    segments = {c.get_label(): c.get_segments() for c in ax.collections if not c.get_label().startswith("_")}
    exact = segments["exact (McNemar) 95% CI"]
    assert [(s[0][0], s[1][0]) for s in exact] == [(1.0, 5.5), (-3.5, 1.4)]
    relation = segments["relation-clustered bootstrap 95% CI"]
    assert [(s[0][0], s[1][0]) for s in relation] == [(-0.5, 7.0), (-4.0, 2.5)]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["fr (n=500)", "zh (n=480)"]
    assert list(ax.get_yticks()) == [1.0, 0.0]  # the first row on top


def test_estimate_cells_and_csv_columns_give_the_same_table():
    cells = SUMMARY[["language", "n_test", "control_gains"]].copy()
    for name in ("gain", "gain_fact_ci", "gain_relation_ci", "wrong language (nl)", "wrong language (es)"):
        cells[name] = [
            Estimate(v, lo, hi) if np.isfinite(v) else np.nan
            for v, lo, hi in zip(SUMMARY[name], SUMMARY[f"{name}_low"], SUMMARY[f"{name}_high"])
        ]
    a, b = gains_table(cells), gains_table(SUMMARY)
    pd.testing.assert_frame_equal(a, b)
    assert list(a["wrong_language"]) == ["nl", "es"] and a.at[0, "controls"] == [-3.0, -1.0, -2.0]


def test_the_search_plot_marks_the_chosen_setting_and_the_baseline(folder):
    ax = lx.read_real_size(folder).plot_search("fr")
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    chosen = next(ln for label, ln in lines.items() if label.startswith("chosen: "))
    assert chosen.get_label() == "chosen: (4, 5)" and list(chosen.get_ydata()) == [40.0]
    assert list(lines["dropped"].get_ydata()) and len(lines["kept for the next rung"].get_xdata()) == 3
    assert list(lines["baseline, all dev facts (25.0%)"].get_ydata()) == [25.0, 25.0]
    assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == ["rung 0", "rung 1"]
    with pytest.raises(InputError, match="no search table for 'ru'"):
        lx.read_real_size(folder).plot_search("ru")


def test_the_trans_plot_has_an_arrow_only_where_trans_changed(folder):
    ax = lx.read_real_size(folder).plot_trans()
    arrows = [t for t in ax.texts if getattr(t, "arrow_patch", None) is not None]
    assert len(arrows) == 1 and arrows[0].xy == (53.0, 1.0)


def test_axes_grid_gives_n_axes_and_hides_the_rest():
    axes = lx.axes_grid(4, ncols=3)
    assert len(axes) == 4 and len({id(a.figure) for a in axes}) == 1
    assert sum(a.get_visible() for a in axes[0].figure.axes) == 4 and len(axes[0].figure.axes) == 6
    with pytest.raises(InputError):
        lx.axes_grid(0)


def test_the_sweep_and_lens_figures_draw_their_tables():
    gain = pd.DataFrame(
        [[1.0, -2.0], [np.nan, 3.0]], index=pd.Index([0, 1], name="m"), columns=pd.Index([1, 2], name="n")
    )
    ax = lx.draw_sweep_gain(gain, baseline=40.0, language="fr")
    assert ax.get_title() == "LRP2 gain over the baseline (40.0%), fr"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1 (L2)", "2 (L3)"]
    lens = pd.DataFrame(
        {
            "condition": ["baseline"] * 2 + ["lrp2"] * 2,
            "language": "fr",
            "source": "en",
            "relation": "P1",
            "lineid": 1,
            "layer": [0, 1, 0, 1],
            "p_target": [0.1, 0.2, 0.1, 0.3],
            "p_source": [0.3, 0.1, 0.2, 0.1],
            "same_token": False,
        }
    )
    curve = lx.lens_curve([lens[lens.condition == "baseline"], lens[lens.condition == "lrp2"]])
    assert set(curve["condition"]) == {"baseline", "lrp2"} and set(curve["label"]) == {"fr label", "en label"}
    ax = lx.draw_lens([lens[lens.condition == "baseline"], lens[lens.condition == "lrp2"]])
    assert ax.get_title() == "Logit lens, fr prompts (1 facts)" and len(ax.get_lines()) >= 4
