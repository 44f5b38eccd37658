"""Heatmaps and line plots: a PNG and the CSV of the plotted table, written atomically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lrp2_interp.drawing import offscreen
from lrp2_interp.errors import InputError
from lrp2_interp.neurons.overlap import overlap_by_layer, overlap_gain
from lrp2_interp.neurons.sets import NeuronSet
from lrp2_interp.plots import (
    attribution_heatmap,
    heatmap,
    line_plot,
    overlap_gain_heatmap,
    relation_overlap_heatmap,
    shared_neurons_heatmap,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


def test_heatmap_writes_png_and_csv(tmp_path):
    pivot = pd.DataFrame(
        [[1.0, -2.0, np.nan], [0.5, 3.0, 1.0]], index=pd.Index([0, 1], name="m"), columns=pd.Index([1, 2, 3], name="n")
    )
    out = heatmap(pivot, tmp_path / "sweep.png", title="gain", center=0.0)
    assert out == tmp_path / "sweep.png" and _is_png(out)
    csv = pd.read_csv(tmp_path / "sweep.csv")
    assert list(csv.columns) == ["m", "1", "2", "3"]
    np.testing.assert_allclose(csv[["1", "2", "3"]].to_numpy(), pivot.to_numpy())
    assert not list(tmp_path.glob("*.tmp*")), "temporary files left behind"


def test_heatmap_options_and_no_pyplot_figures_leak(tmp_path):
    big = pd.DataFrame(np.random.default_rng(0).random((30, 20)))
    assert _is_png(heatmap(big, tmp_path / "big", fmt=".1f"))  # suffix added, no annotations (600 cells)
    labels = pd.DataFrame([["a", "b"]], columns=[0, 1])
    assert _is_png(heatmap(pd.DataFrame([[1, 2]]), tmp_path / "lab.png", annot=labels, cmap="mako"))
    with pytest.raises(InputError, match="empty"):
        heatmap(pd.DataFrame(), tmp_path / "empty.png")
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []


def test_line_plot_writes_png_and_csv(tmp_path):
    df = pd.DataFrame(
        {
            "layer": [0, 1, 2] * 2,
            "cosine": [0.1, 0.5, 0.9, 0.2, 0.3, 0.4],
            "condition": ["baseline"] * 3 + ["lrp2"] * 3,
            "language": "fr",
        }
    )
    out = line_plot(df, "layer", "cosine", "condition", tmp_path / "sim.png", "similarity", style="language")
    assert _is_png(out)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "sim.csv"), df)
    with pytest.raises(InputError, match="not in the table"):
        line_plot(df, "layer", "nope", None, tmp_path / "x.png")


def _sets() -> dict:
    en = NeuronSet(frozenset({(0, 1), (0, 2), (1, 3), (2, 4)}))
    return {
        ("en", "baseline", "u1"): en,
        ("fr", "baseline", "u1"): NeuronSet(frozenset({(0, 1), (1, 5)})),
        ("fr", "lrp2", "u1"): NeuronSet(frozenset({(0, 1), (1, 3)})),
        ("ru", "baseline", "u1"): NeuronSet(frozenset({(2, 6)})),
        ("ru", "lrp2", "u1"): NeuronSet(frozenset({(2, 4)})),
    }


def test_neuron_heatmaps(tmp_path):
    by_layer = overlap_by_layer(_sets(), 3).table
    shared = shared_neurons_heatmap(by_layer, tmp_path / "shared.png")
    assert _is_png(shared)
    table = pd.read_csv(tmp_path / "shared.csv").set_index("layer")
    assert table.loc[0, "fr"] == 1 and table.loc[1, "fr"] == 0 and table.loc[2, "ru"] == 0
    gain = overlap_gain_heatmap(overlap_gain(by_layer, value="n_shared"), tmp_path / "gain.png")
    assert _is_png(gain)
    g = pd.read_csv(tmp_path / "gain.csv").set_index("layer")
    assert g.loc[1, "fr"] == 1 and g.loc[2, "ru"] == 1 and g.loc[0, "fr"] == 0
    with pytest.raises(InputError, match="condition"):
        shared_neurons_heatmap(by_layer, tmp_path / "x.png", condition="nope")


def test_attribution_heatmap_top_neurons_per_layer(tmp_path):
    scores = torch.zeros(2, 8)
    scores[0, 5], scores[0, 2], scores[1, 7] = 3.0, 2.0, 1.0
    out = attribution_heatmap(scores, tmp_path / "attr.png", layers=(4, 9), top=3)
    assert _is_png(out)
    long = pd.read_csv(tmp_path / "attr.csv")
    assert list(long.columns) == ["layer", "rank", "neuron", "score"] and len(long) == 6
    first = long[long["rank"] == 1].set_index("layer")
    assert first.loc[4, "neuron"] == 5 and first.loc[9, "neuron"] == 7 and first.loc[4, "score"] == 3.0


def _capture_figures(monkeypatch) -> list:
    import lrp2_interp.plots as plots

    figs = []
    real = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda path, fig: (figs.append(fig), real(path, fig))[1])
    return figs


def test_layer_axes_show_block_index_and_paper_layer(tmp_path, monkeypatch):
    figs = _capture_figures(monkeypatch)
    by_layer = overlap_by_layer(_sets(), 3).table
    shared_neurons_heatmap(by_layer, tmp_path / "shared.png")
    ax = figs[-1].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0 (L1)", "1 (L2)", "2 (L3)"]
    assert "paper layer" in ax.get_ylabel()
    assert list(pd.read_csv(tmp_path / "shared.csv")["layer"]) == [0, 1, 2]  # the CSV keeps block indices


def test_relation_overlap_heatmap_puts_same_different_and_chance_side_by_side(tmp_path, monkeypatch):
    from lrp2_interp.neurons.control import permutation_control, unit_baseline_summary
    from lrp2_interp.neurons.overlap import different_unit_overlap

    figs = _capture_figures(monkeypatch)
    sets = dict(_sets())
    sets[("en", "baseline", "u2")] = NeuronSet(frozenset({(0, 1), (1, 5)}))
    sets[("fr", "baseline", "u2")] = NeuronSet(frozenset({(0, 2)}))
    sets[("fr", "lrp2", "u2")] = NeuronSet(frozenset({(0, 2)}))
    sets = {k: v for k, v in sets.items() if k[0] != "ru"}
    summary = unit_baseline_summary(
        different_unit_overlap(sets, 3), permutation_control(sets, n_layers=3, d_mlp=8, n_perm=50, by_layer=True)
    )
    path = relation_overlap_heatmap(summary, tmp_path / "rel.png")
    assert _is_png(path)
    table = pd.read_csv(tmp_path / "rel.csv").set_index("layer")
    assert list(table.columns) == [f"fr {c} {k}" for c in ("baseline", "lrp2") for k in ("same", "different", "chance")]
    # layer 0, baseline: u1 shares (0,1) with en u1 (rate 1/1), u2's (0,2) is in en u1 (different: 1/1)
    assert table.loc[0, "fr baseline same"] == pytest.approx((1 + 0) / 2)
    assert table.loc[0, "fr baseline different"] == pytest.approx((1 + 1) / 2)
    assert [t.get_text() for t in figs[-1].axes[0].get_yticklabels()] == ["0 (L1)", "1 (L2)", "2 (L3)"]


# ------------------------------------------------------------------ issue 11: labels in other scripts
def test_cjk_and_indic_labels_render_without_font_warnings(tmp_path):
    """Chinese/Japanese/Korean labels were empty boxes with a font warning on every run."""
    import warnings

    from lrp2_interp.plots import heatmap, line_plot

    labels = ["中文", "日本語", "한국어", "ਪੰਜਾਬੀ", "en"]
    pivot = pd.DataFrame(np.arange(10.0).reshape(5, 2), index=pd.Index(labels, name="语言"), columns=["a", "b"])
    df = pd.DataFrame({"layer": [0, 1] * 5, "cosine": np.linspace(0, 1, 10), "language": labels * 2})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing-glyph warning fails the test
        png = heatmap(pivot, tmp_path / "h.png", title="東京 -> 日本")
        line_plot(df, "layer", "cosine", "language", tmp_path / "l.png", title="서울")
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert list(pd.read_csv(tmp_path / "h.csv")["语言"]) == labels  # the exact labels stay in the CSV


def test_font_plan_uses_an_installed_font_or_a_clean_placeholder():
    from lrp2_interp.fonts import font_plan

    plan = font_plan(["中文 x", "en"])
    if plan.uncovered:  # no installed font has these glyphs: drawn as '?', never as a warning box
        assert plan.uncovered == {"中", "文"} and plan.clean("中文 x") == "?? x"
    else:  # a CJK font (e.g. Debian fonts-noto-cjk) is installed: it becomes the fallback family
        assert len(plan.families) > 1 and plan.clean("中文 x") == "中文 x"
    assert font_plan(["en", 3]).families == plan.families[:1] and not font_plan(["en"]).uncovered


# ------------------------------------------------------------------ issue 21: typed results plot onto an Axes
def _causal_result():
    from lrp2_interp.neurons.causal import COLUMNS, CausalConfig, CausalResult

    rows = [
        (lang, cond, "P1", 1, neurons, 0, "suppress", 0.0, 2, 0.5, after, after - 0.5, (after - 0.5) / 0.5)
        for lang, cond in (("en", "baseline"), ("fr", "baseline"), ("fr", "lrp2"))
        for neurons, after in (("knowledge", 0.1), ("random", 0.45))
    ]
    return CausalResult(CausalConfig(), "fr", None, pd.DataFrame(rows, columns=COLUMNS))


def _attribution_result():
    from lrp2_interp.attribution.ig_config import AttributionConfig, AttributionResult

    scores = torch.zeros(2, 8)
    scores[0, 5], scores[1, 7] = 3.0, 1.0
    zero = torch.zeros(2)
    return AttributionResult(
        AttributionConfig(), "tiny", "p", (1,), (3,), (4, 9), "fast", scores, torch.zeros(1, 2, 8), zero, zero, zero
    )


def test_typed_results_plot_onto_a_given_axes_and_save_csv_and_png(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from lrp2_interp.neurons.control import permutation_control
    from lrp2_interp.neurons.overlap import overlap_table

    monkeypatch.chdir(tmp_path)
    results = {
        "overlap": overlap_by_layer(_sets(), 3),
        "pooled": overlap_table(_sets()),
        "control": permutation_control(_sets(), n_layers=3, d_mlp=8, n_perm=20),
        "causal": _causal_result(),
        "attribution": _attribution_result(),
    }
    fig, axes = plt.subplots(1, len(results))
    try:
        for ax, (name, result) in zip(axes, results.items()):
            assert result.plot(ax) is ax and ax.get_title(), name
            assert isinstance(result.to_frame(), pd.DataFrame) and len(result.to_frame()), name
    finally:
        plt.close(fig)
    assert list(tmp_path.iterdir()) == []  # plotting writes nothing
    assert plt.get_fignums() == []
    for name, result in results.items():
        png = result.save(tmp_path / name)
        assert _is_png(png) and png.with_suffix(".csv").is_file(), name
    frame = pd.read_csv(tmp_path / "attribution" / "attribution.csv")
    assert list(frame.columns) == ["layer", "neuron", "score", "delta"] and set(frame["layer"]) == {4, 9}
    assert frame.loc[frame["score"].idxmax(), ["layer", "neuron"]].tolist() == [4, 5]


def test_shared_neuron_figure_speaks_plainly_with_integer_layer_ticks():
    from lrp2_interp.figures import draw_shared_neurons

    with offscreen():
        ax = draw_shared_neurons(overlap_by_layer(_sets(), 3).table)
    assert ax.get_title() == "Knowledge neurons shared with English, per layer (baseline)"
    assert "unit" not in ax.get_title() + ax.figure.axes[-1].get_ylabel()  # no internal vocabulary
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0 (L1)", "1 (L2)", "2 (L3)"]


def test_line_plots_over_layers_get_integer_ticks():
    from lrp2_interp.drawing import draw_lines

    df = pd.DataFrame({"layer": [0, 1, 2, 3, 4, 5] * 2, "y": np.arange(12.0), "language": ["fr"] * 6 + ["ru"] * 6})
    with offscreen():
        ax = draw_lines(df, "layer", "y", "language")
    assert list(ax.get_xticks()) == [0, 1, 2, 3, 4, 5]  # not 0.5, 2.5, ...
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"{b} (L{b + 1})" for b in range(6)]


def test_matplotlib_rc_restores_only_its_own_settings():
    """Settings the body changed stay: IPython's inline backend turns interactive mode on when the first figure
    loads it inside the context, and restoring it hid every later figure of a notebook."""
    from matplotlib import rcParams

    from lrp2_interp.drawing import matplotlib_rc

    interactive, size = rcParams["interactive"], rcParams["font.size"]
    try:
        with matplotlib_rc({"font.size": size + 3}):
            assert rcParams["font.size"] == size + 3
            rcParams["interactive"] = not interactive
        assert rcParams["font.size"] == size and rcParams["interactive"] == (not interactive)
    finally:
        rcParams["interactive"] = interactive
