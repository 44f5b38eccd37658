"""Seaborn heatmaps and line plots, each saved as a PNG plus the CSV of the plotted table.

Figures are built on a :class:`matplotlib.figure.Figure` with an explicit Agg
(non-interactive) canvas inside each function: nothing touches pyplot's global
state or backend, so the functions work the same in scripts, tests, threads and
notebooks (where the lead may display the returned PNG).  Both files are written
atomically (:func:`~lrp2_interp.files.save_figure`, :func:`~lrp2_interp.files.write_table`);
the CSV has the PNG's name with ``.csv``.

Generic: :func:`heatmap`, :func:`line_plot`.  Specific, one function per figure
(the figures of the neuron analysis and the demo): :func:`shared_neurons_heatmap`,
:func:`overlap_gain_heatmap`, :func:`attribution_heatmap`,
:func:`relation_overlap_heatmap`, :func:`similarity_plot`.  Layer axes show the
block index and the paper's layer number (:func:`lrp2_interp.layers.layer_label`,
e.g. ``"0 (L1)"``); the CSVs keep the block index.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.files import save_figure, write_table
from lrp2_interp.fonts import FontPlan, font_plan
from lrp2_interp.layers import layer_labels

MAX_ANNOTATED_CELLS = 400
LAYER_AXIS = "layer: block index (paper layer)"


def _labels_of(frame: pd.DataFrame) -> list[Any]:
    return [*frame.index, *frame.columns, frame.index.name, frame.columns.name]


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _png(path: str | Path) -> Path:
    path = Path(path)
    return path if path.suffix else path.with_suffix(".png")


def heatmap(
    df_pivot: pd.DataFrame,
    path: str | Path,
    title: str = "",
    center: float | None = None,
    fmt: str = ".2f",
    *,
    annot: bool | pd.DataFrame | None = None,
    cmap: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    cbar_label: str | None = None,
    xticklabels: Sequence[str] | None = None,
    yticklabels: Sequence[str] | None = None,
) -> Path:
    """Heatmap of a pivoted table (rows x columns); writes ``path`` (PNG) and ``path.with_suffix('.csv')``.

    ``center`` switches to a diverging colormap (``RdBu_r``) centred there, with
    limits symmetric around it.  ``annot``: ``True``/``False`` to write the values
    (default: only when the table has at most 400 cells), or a same-shape frame of
    labels (written as text).  NaN cells are left blank.  ``xticklabels`` /
    ``yticklabels`` replace the tick labels of the columns / rows (e.g.
    :func:`~lrp2_interp.layers.layer_labels` of a layer axis); the CSV keeps the
    table's own index.  Returns the PNG path.
    """
    if df_pivot.empty:
        raise InputError("nothing to plot: the table is empty", field="df_pivot")
    path = _png(path)
    data = df_pivot.apply(pd.to_numeric, errors="coerce")
    annot_labels = (
        annot.reindex(index=data.index, columns=data.columns).astype(str) if isinstance(annot, pd.DataFrame) else None
    )
    texts = [title, xlabel, ylabel, cbar_label, *_labels_of(data), *(xticklabels or ()), *(yticklabels or ())]
    plan = font_plan(texts + (annot_labels.to_numpy().ravel().tolist() if annot_labels is not None else []))
    data = data.rename(index=plan.clean, columns=plan.clean)
    data.index.name, data.columns.name = plan.clean(data.index.name), plan.clean(data.columns.name)
    with matplotlib_rc(plan.rc()):
        ticks = {
            f"{axis}ticklabels": [plan.clean(t) for t in labels] if labels is not None else "auto"
            for axis, labels in (("x", xticklabels), ("y", yticklabels))
        }
        _draw_heatmap(
            data, path, plan, title, center, fmt, annot, annot_labels, cmap, xlabel, ylabel, cbar_label, ticks
        )
    write_table(path.with_suffix(".csv"), df_pivot.reset_index())
    return path


def matplotlib_rc(params: dict[str, Any]):
    """matplotlib's ``rc_context``: settings for the figures drawn inside, restored afterwards."""
    from matplotlib import rc_context

    return rc_context(params)  # type: ignore[arg-type]  # matplotlib's stubs type the keys as a Literal of every rc name


def _draw_heatmap(
    data: pd.DataFrame,
    path: Path,
    plan: FontPlan,
    title: str,
    center: float | None,
    fmt: str,
    annot: Any,
    annot_labels: pd.DataFrame | None,
    cmap: str | None,
    xlabel: str | None,
    ylabel: str | None,
    cbar_label: str | None,
    ticks: dict[str, Any],
) -> None:
    import seaborn as sns

    n_rows, n_cols = data.shape
    fig, ax = _figure(min(24.0, 1.6 + 0.55 * n_cols), min(24.0, 1.4 + 0.4 * n_rows))
    kw: dict[str, Any] = {"cmap": cmap or ("RdBu_r" if center is not None else "viridis")}
    if center is not None:
        span = np.nanmax(np.abs(data.to_numpy(float) - center)) if data.notna().any().any() else 1.0
        span = span if span > 0 else 1.0
        kw.update(center=center, vmin=center - span, vmax=center + span)
    if annot_labels is not None:
        kw.update(annot=annot_labels.map(plan.clean).to_numpy(), fmt="")
    else:
        kw.update(annot=(data.size <= MAX_ANNOTATED_CELLS) if annot is None else annot, fmt=fmt)
    with warnings.catch_warnings():  # seaborn's centred colormap uses a deprecated matplotlib setter
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        sns.heatmap(
            data, ax=ax, annot_kws={"fontsize": 7}, cbar_kws={"label": plan.clean(cbar_label or "")}, **ticks, **kw
        )
    ax.set_title(plan.clean(title))
    ax.set_xlabel(plan.clean(xlabel if xlabel is not None else str(data.columns.name or "")))
    ax.set_ylabel(plan.clean(ylabel if ylabel is not None else str(data.index.name or "")))
    save_figure(path, fig)


def line_plot(
    df: pd.DataFrame,
    x: str,
    y: str,
    hue: str | None,
    path: str | Path,
    title: str = "",
    *,
    style: str | None = None,
    ylabel: str | None = None,
) -> Path:
    """Seaborn line plot of ``y`` vs ``x`` (markers on); writes the PNG and the CSV of ``df``."""
    import seaborn as sns

    missing = [c for c in (x, y, hue, style) if c is not None and c not in df.columns]
    if missing:
        raise InputError(f"columns {missing} not in the table (have {list(df.columns)})", field="columns")
    if df.empty:
        raise InputError("nothing to plot: the table is empty", field="df")
    path = _png(path)
    groups = [c for c in (hue, style) if c is not None]
    plan = font_plan([title, ylabel, x, y, *groups, *(v for c in groups for v in df[c].unique())])
    shown = df.assign(**{c: df[c].map(plan.clean) for c in groups}) if plan.uncovered else df
    with matplotlib_rc(plan.rc()):
        fig, ax = _figure(7.0, 4.2)
        sns.lineplot(data=shown, x=x, y=y, hue=hue, style=style, markers=True, dashes=True, ax=ax, errorbar=None)
        ax.set_title(plan.clean(title))
        if ylabel:
            ax.set_ylabel(plan.clean(ylabel))
        if ax.get_legend() is not None:
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        save_figure(path, fig)
    write_table(path.with_suffix(".csv"), df)
    return path


# ------------------------------------------------------------------ the analysis heatmaps
def shared_neurons_heatmap(
    by_layer: pd.DataFrame,
    path: str | Path,
    *,
    condition: str = "baseline",
    value: str = "n_shared",
    agg: str = "mean",
    title: str | None = None,
) -> Path:
    """Layer x language: ``value`` (default: neurons shared with English) aggregated over units.

    ``by_layer`` is :func:`lrp2_interp.neurons.overlap.overlap_by_layer`'s table.
    """
    sub = by_layer[by_layer["condition"] == condition]
    if sub.empty:
        raise InputError(
            f"no rows with condition {condition!r} (have {sorted(by_layer['condition'].unique())})", field="condition"
        )
    pivot = sub.pivot_table(index="layer", columns="language", values=value, aggfunc=agg)
    return heatmap(
        pivot,
        path,
        title or f"{value} with English per layer ({agg} over units, {condition})",
        fmt=".1f" if value.startswith("n_") else ".2f",
        cbar_label=value,
        ylabel=LAYER_AXIS,
        yticklabels=layer_labels(pivot.index),
    )


def overlap_gain_heatmap(gain: pd.DataFrame, path: str | Path, *, title: str | None = None) -> Path:
    """Layer x language: mean over units of the per-unit gains, diverging around 0.

    ``gain`` is :func:`lrp2_interp.neurons.overlap.overlap_gain`'s table (columns language, unit,
    layer, the two conditions, value, gain).
    """
    missing = {"language", "layer", "value", "gain"} - set(gain.columns)
    if missing:
        raise InputError(
            f"the gain table lacks columns {sorted(missing)} (use neurons.overlap.overlap_gain)", field="gain"
        )
    value = str(gain["value"].iloc[0]) if len(gain) else "value"
    baseline, treated = [c for c in gain.columns if c not in ("language", "unit", "layer", "value", "gain")][:2]
    pivot = gain.pivot_table(index="layer", columns="language", values="gain", aggfunc="mean")
    return heatmap(
        pivot,
        path,
        title or f"{value} gain ({treated} - {baseline}) per layer",
        center=0.0,
        cbar_label=f"{value} gain",
        ylabel=LAYER_AXIS,
        yticklabels=layer_labels(pivot.index),
    )


def relation_overlap_heatmap(
    summary: pd.DataFrame, path: str | Path, *, value: str = "overlap_rate", title: str | None = None
) -> Path:
    """Layer x (language, condition, same / different / chance): the paper's Table 2 comparison per layer.

    ``summary`` is :func:`lrp2_interp.neurons.overlap.unit_baseline_summary`'s per-layer
    table (with the permutation control's ``chance_*`` columns where present).
    """
    comps = [c for c in ("same", "different", "chance") if f"{c}_{value}" in summary.columns]
    if "layer" not in summary.columns or not comps:
        raise InputError(f"need a per-layer table with same_/different_{value} columns", field="summary")
    long = summary.melt(
        id_vars=["language", "condition", "layer"],
        value_vars=[f"{c}_{value}" for c in comps],
        var_name="comparison",
        value_name=value,
    )
    long["column"] = long["language"] + " " + long["condition"] + " " + long["comparison"].str.split("_").str[0]
    order = [
        f"{lang} {cond} {c}"
        for lang, cond in summary[["language", "condition"]].drop_duplicates().itertuples(index=False)
        for c in comps
    ]
    pivot = long.pivot(index="layer", columns="column", values=value).reindex(columns=order)
    return heatmap(
        pivot,
        path,
        title or f"{value} with English: same relation vs different relations vs chance",
        cbar_label=value,
        ylabel=LAYER_AXIS,
        xlabel="",
        yticklabels=layer_labels(pivot.index),
    )


def attribution_heatmap(
    scores: torch.Tensor,
    path: str | Path,
    *,
    layers: Sequence[int] | None = None,
    top: int = 10,
    title: str = "attribution of one fact",
) -> Path:
    """Layer x neuron rank: the ``top`` highest attribution scores of every layer, annotated with the neuron index.

    ``scores``: ``[n_rows, d_mlp]`` (an ``AttributionResult.scores``) or ``[n_prompts, n_rows, d_mlp]``
    (averaged over prompts); ``layers``: the block index of each row (default ``0..n_rows-1``).
    The CSV is the long table (layer, rank, neuron, score).
    """
    t = torch.as_tensor(scores).detach().float().cpu()
    if t.dim() == 2:
        t = t[None]  # [1, R, D]
    if t.dim() != 3:
        raise InputError(
            f"scores must be [rows, d_mlp] or [prompts, rows, d_mlp], got shape {tuple(t.shape)}", field="scores"
        )
    rows = tuple(layers) if layers is not None else tuple(range(t.shape[1]))
    if len(rows) != t.shape[1]:
        raise InputError(f"{len(rows)} layers given for {t.shape[1]} score rows", field="layers")
    mean = t.mean(0)  # [R, D]
    k = min(top, mean.shape[1])
    vals, idx = mean.topk(k, dim=-1)  # [R, k]
    index = pd.Index(rows, name="layer")
    columns = pd.Index(range(1, k + 1), name="neuron rank")
    values = pd.DataFrame(vals.numpy(), index=index, columns=columns)
    labels = pd.DataFrame(idx.numpy(), index=index, columns=columns)
    out = heatmap(
        values,
        path,
        title,
        center=0.0 if (vals < 0).any() else None,
        annot=labels,
        cbar_label="attribution score",
        ylabel=LAYER_AXIS,
        yticklabels=layer_labels(rows),
    )
    long = pd.DataFrame(
        {
            "layer": np.repeat(rows, k),
            "rank": np.tile(np.arange(1, k + 1), len(rows)),
            "neuron": idx.flatten().numpy(),
            "score": vals.flatten().numpy(),
        }
    )
    write_table(out.with_suffix(".csv"), long)
    return out


def similarity_plot(table: pd.DataFrame, path: str | Path, title: str | None = None) -> Path:
    """Cosine vs layer (hue: language, style: condition) + its CSV next to it.

    ``table`` is :func:`lrp2_interp.lrp2.similarity.similarity_table`'s (``.table``);
    with both positions the condition is labelled with its position.
    """
    df = table
    if "position" in df.columns and df["position"].nunique() > 1:
        df = df.assign(condition=df["condition"] + " (" + df["position"] + ")")
    return line_plot(
        df, "layer", "cosine", "language", path, title or "cosine similarity to English per layer", style="condition"
    )
