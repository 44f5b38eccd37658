"""The analysis figures drawn onto an Axes (one ``draw_*`` per figure), with plain-language titles and labels.

Each ``draw_*`` takes the analysis table, draws it with :mod:`lrp2_interp.drawing`
and returns the Axes; each ``*_table`` gives the plotted table (what
:mod:`lrp2_interp.plots` writes as the figure's CSV).  Layer axes show integer
ticks with the block index and the paper's layer (``"0 (L1)"``).  Figures comparing languages with a
source language take ``source`` (default ``"en"``) and name it (:func:`lrp2_interp.languages.language_name`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from lrp2_interp.drawing import LAYER_AXIS, draw_heatmap, draw_lines, new_axes
from lrp2_interp.errors import InputError
from lrp2_interp.languages import language_name
from lrp2_interp.layers import layer_labels

#: plain-language names of the overlap columns ({source}: the source language's name)
VALUE_NAMES = {
    "n_shared": "knowledge neurons shared with {source}",
    "jaccard": "overlap of knowledge neurons with {source} (Jaccard)",
    "overlap_rate": "share of the language's knowledge neurons that {source} also uses",
    "overlap_rate_source": "share of {source}'s knowledge neurons that the language also uses",
    "n_target": "knowledge neurons",
}
#: short names for colour bars
SHORT_NAMES = {
    "n_shared": "shared neurons",
    "jaccard": "Jaccard",
    "overlap_rate": "overlap rate",
    "n_target": "neurons",
}
CONDITION_NAMES = {"baseline": "baseline", "lrp2": "with LRP2"}
#: similarity measures of :func:`lrp2_interp.lrp2.similarity.similarity_table`: (title, panel title, y label)
MEASURES = {
    "cosine": ("Cosine to {source}", "Cosine (raw)", "cosine"),
    "centred_cosine": (
        "Cosine to {source} after removing the mean over languages",
        "Cosine after removing the mean over languages",
        "centred cosine",
    ),
    "cka": ("Linear CKA with {source} (geometry across facts)", "Linear CKA (geometry across facts)", "linear CKA"),
}


def value_name(value: str, source: str = "en") -> str:
    """Plain-language name of an overlap column compared with ``source`` (the column name itself when unknown)."""
    return VALUE_NAMES.get(value, value.replace("_", " ")).format(source=language_name(source))


def _units(table: pd.DataFrame) -> str:
    units = table["unit"].astype(str) if "unit" in table.columns else pd.Series(dtype=str)
    return "facts" if len(units) and units.str.contains(":").all() else "relations"


def shared_neurons_table(by_layer: pd.DataFrame, condition: str, value: str, agg: str) -> pd.DataFrame:
    """Layer x language pivot of ``value`` aggregated over units, for one condition."""
    sub = by_layer[by_layer["condition"] == condition]
    if sub.empty:
        raise InputError(
            f"no rows with condition {condition!r} (have {sorted(by_layer['condition'].unique())})", field="condition"
        )
    return sub.pivot_table(index="layer", columns="language", values=value, aggfunc=agg)


def draw_shared_neurons(
    by_layer: pd.DataFrame,
    ax: Any = None,
    *,
    condition: str = "baseline",
    value: str = "n_shared",
    agg: str = "mean",
    title: str | None = None,
    source: str = "en",
) -> Any:
    """Layer x language heatmap: ``value`` (default: neurons shared with ``source``) aggregated over facts.

    ``by_layer`` is :func:`lrp2_interp.neurons.overlap.overlap_by_layer`'s table.
    """
    pivot = shared_neurons_table(by_layer, condition, value, agg)
    name = value_name(value, source)
    return draw_heatmap(
        pivot,
        ax,
        title=title or f"{name[0].upper()}{name[1:]}, per layer ({CONDITION_NAMES.get(condition, condition)})",
        fmt=".1f" if value.startswith("n_") else ".2f",
        cbar_label=f"{SHORT_NAMES.get(value, value)} ({agg} over {_units(by_layer)})",
        xlabel="language",
        ylabel=LAYER_AXIS,
        yticklabels=layer_labels(pivot.index),
    )


def overlap_gain_table(gain: pd.DataFrame) -> pd.DataFrame:
    """Layer x language pivot of the mean gain over units."""
    missing = {"language", "layer", "value", "gain"} - set(gain.columns)
    if missing:
        raise InputError(
            f"the gain table lacks columns {sorted(missing)} (use neurons.overlap.overlap_gain)", field="gain"
        )
    return gain.pivot_table(index="layer", columns="language", values="gain", aggfunc="mean")


def draw_overlap_gain(gain: pd.DataFrame, ax: Any = None, *, title: str | None = None, source: str = "en") -> Any:
    """Layer x language heatmap of the change (treated - baseline) per layer, diverging around 0.

    ``gain`` is :func:`lrp2_interp.neurons.overlap.overlap_gain`'s table.
    """
    pivot = overlap_gain_table(gain)
    value = str(gain["value"].iloc[0]) if len(gain) else "value"
    baseline, treated = [c for c in gain.columns if c not in ("language", "unit", "layer", "value", "gain")][:2]
    after = CONDITION_NAMES.get(treated, treated)
    return draw_heatmap(
        pivot,
        ax,
        title=title or f"Change {after} in {value_name(value, source)}, per layer",
        center=0.0,
        cbar_label=f"{after} minus {CONDITION_NAMES.get(baseline, baseline)} (mean over {_units(gain)})",
        xlabel="language",
        ylabel=LAYER_AXIS,
        yticklabels=layer_labels(pivot.index),
    )


def relation_overlap_table(summary: pd.DataFrame, value: str) -> pd.DataFrame:
    """Layer x "language condition comparison" pivot: same relation / different relations / chance."""
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
    return long.pivot(index="layer", columns="column", values=value).reindex(columns=order)


def draw_relation_overlap(
    summary: pd.DataFrame,
    ax: Any = None,
    *,
    value: str = "overlap_rate",
    title: str | None = None,
    source: str = "en",
) -> Any:
    """The paper's Table 2 per layer: overlap with ``source`` for the same relation, other relations and chance.

    ``summary`` is :func:`lrp2_interp.neurons.control.unit_baseline_summary`'s per-layer table.
    """
    pivot = relation_overlap_table(summary, value)
    return draw_heatmap(
        pivot,
        ax,
        title=title or f"Overlap with {language_name(source)}: same relation vs other relations vs chance, per layer",
        cbar_label=value_name(value, source),
        ylabel=LAYER_AXIS,
        xlabel="",
        yticklabels=layer_labels(pivot.index),
    )


def attribution_tables(
    scores: torch.Tensor, layers: Sequence[int] | None = None, top: int = 10
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The top-``top`` scores per layer: values and neuron indices (layer x rank) and the long table."""
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
    k = min(top, t.shape[2])
    vals, idx = t.mean(0).topk(k, dim=-1)  # [R, k]
    index, columns = pd.Index(rows, name="layer"), pd.Index(range(1, k + 1), name="neuron rank")
    long = pd.DataFrame(
        {
            "layer": np.repeat(rows, k),
            "rank": np.tile(np.arange(1, k + 1), len(rows)),
            "neuron": idx.flatten().numpy(),
            "score": vals.flatten().numpy(),
        }
    )
    return pd.DataFrame(vals.numpy(), index, columns), pd.DataFrame(idx.numpy(), index, columns), long


def draw_attribution(
    scores: torch.Tensor,
    ax: Any = None,
    *,
    layers: Sequence[int] | None = None,
    top: int = 10,
    title: str = "Attribution of one fact: the top neurons of each layer",
) -> Any:
    """Layer x neuron rank heatmap of the ``top`` attribution scores per layer, each cell labelled with its neuron.

    ``scores``: ``[n_rows, d_mlp]`` (an ``AttributionResult.scores``) or ``[n_prompts, n_rows, d_mlp]``
    (averaged over prompts); ``layers``: the block index of each row (default ``0..n_rows-1``).
    """
    values, labels, _ = attribution_tables(scores, layers, top)
    return draw_heatmap(
        values,
        ax,
        title=title,
        center=0.0 if (values.to_numpy() < 0).any() else None,
        annot=labels,
        cbar_label="attribution score (integrated gradients)",
        xlabel="neuron rank (cell: neuron index)",
        ylabel=LAYER_AXIS,
        yticklabels=layer_labels(values.index),
    )


def similarity_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The similarity table with the condition named in plain words (and its position when there are two)."""
    df = table.assign(condition=table["condition"].map(lambda c: CONDITION_NAMES.get(c, c)))
    if "position" in df.columns and df["position"].nunique() > 1:
        df = df.assign(condition=df["condition"] + " (" + df["position"] + ")")
    return df


def draw_similarity(
    table: pd.DataFrame,
    ax: Any = None,
    *,
    measure: str = "centred_cosine",
    legend: bool = True,
    title: str | None = None,
    source: str = "en",
) -> Any:
    """Similarity to ``source`` vs layer (colour: language, line style: baseline / with LRP2) for one measure.

    ``table`` is :func:`lrp2_interp.lrp2.similarity.similarity_table`'s; ``measure``: ``"cosine"``,
    ``"centred_cosine"`` (cosine after removing the mean over languages) or ``"cka"`` (linear CKA).
    """
    if measure not in MEASURES:
        raise InputError(f"measure must be one of {list(MEASURES)}, got {measure!r}", field="measure")
    long_title, _, ylabel = MEASURES[measure]
    return draw_lines(
        similarity_frame(table),
        "layer",
        measure,
        "language",
        ax,
        title=title if title is not None else f"{long_title.format(source=language_name(source))}, per layer",
        style="condition",
        ylabel=ylabel,
        legend=legend,
    )


def draw_overlap(
    table: pd.DataFrame, ax: Any = None, *, value: str = "n_shared", condition: str = "baseline", source: str = "en"
) -> Any:
    """An overlap table drawn: per layer, :func:`draw_shared_neurons`; pooled over layers, language x condition.

    ``table`` is an :class:`~lrp2_interp.neurons.overlap.OverlapResult`'s.
    """
    if "layer" in table.columns:
        return draw_shared_neurons(table, ax, condition=condition, value=value, source=source)
    pivot = table.pivot_table(index="language", columns="condition", values=value, aggfunc="mean")
    pivot = pivot.rename(columns=lambda c: CONDITION_NAMES.get(c, c))
    name = value_name(value, source)
    return draw_heatmap(
        pivot,
        ax,
        title=f"{name[0].upper()}{name[1:]} (mean over {_units(table)})",
        fmt=".1f" if value.startswith("n_") else ".2f",
        cbar_label=name,
        xlabel="",
    )


def draw_control(summary: pd.DataFrame, ax: Any = None, *, source: str = "en") -> Any:
    """Observed overlap with ``source`` next to chance (random sets of the same sizes), per language and condition.

    ``summary`` is :meth:`~lrp2_interp.neurons.control.ControlResult.summary`'s table.
    """
    rows = summary["language"] + " " + summary["condition"].map(lambda c: CONDITION_NAMES.get(c, c))
    shown = pd.DataFrame(
        {
            "Jaccard": summary["jaccard"].to_numpy(),
            "chance Jaccard": summary["chance_jaccard"].to_numpy(),
            "share above chance": summary["share_above_chance"].to_numpy(),
        },
        index=pd.Index(rows, name="language"),
    )
    return draw_heatmap(
        shown,
        ax,
        title=f"Knowledge neurons shared with {language_name(source)} vs random sets of the same sizes",
        fmt=".3f",
        xlabel="",
        cbar_label="value",
    )


def draw_causal(summary: pd.DataFrame, ax: Any = None) -> Any:
    """Mean relative change of the gold probability when knowledge neurons (or random ones) are scaled.

    ``summary`` is :meth:`~lrp2_interp.neurons.causal.CausalResult.summary`'s table.
    """
    rows = (
        summary["language"]
        + " "
        + summary["condition"].map(lambda c: CONDITION_NAMES.get(c, c))
        + ", "
        + summary["intervention"]
    )
    pivot = summary.assign(row=rows).pivot_table(index="row", columns="neurons", values="mean_rel_change", sort=False)
    pivot.index.name, pivot.columns.name = "", "neurons scaled"
    return draw_heatmap(
        pivot,
        ax,
        title="Change in the probability of the right answer when neurons are suppressed or enhanced",
        center=0.0,
        cbar_label="mean relative change",
    )


def draw_sweep_gain(
    gain: pd.DataFrame,
    ax: Any = None,
    *,
    baseline: float | None = None,
    language: str = "",
    title: str | None = None,
) -> Any:
    """m x n heatmap of LRP2's accuracy gain over the baseline (points), diverging around 0.

    ``gain`` is :meth:`~lrp2_interp.lrp2.sweep.SweepResult.gain_matrix`'s table (rows m: LIRP's
    block, columns n: LSRP's); ``baseline``: the baseline accuracy (%) named in the title.
    """
    if gain.empty:
        raise InputError("nothing to plot: the gain matrix is empty", field="gain")
    base = f" ({baseline:.1f}%)" if baseline is not None else ""
    where = f", {language}" if language else ""
    n_rows, n_cols = gain.shape
    ax = ax if ax is not None else new_axes(max(6.0, 2.4 + 0.6 * n_cols), max(4.5, 1.6 + 0.45 * n_rows))
    return draw_heatmap(
        gain,
        ax,
        title=title or f"LRP2 gain over the baseline{base}{where}",
        center=0.0,
        fmt=".1f",
        cbar_label="Acc gain (points)",
        ylabel="m (LIRP): block (paper layer)",
        xlabel="n (LSRP): block (paper layer)",
        yticklabels=layer_labels(gain.index),
        xticklabels=layer_labels(gain.columns),
    )
