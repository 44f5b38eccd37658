"""Figures saved as a PNG plus the CSV of the plotted table: the file-writing forms of :mod:`lrp2_interp.figures`.

Every function here draws with its ``draw_*`` counterpart (:mod:`lrp2_interp.drawing`,
:mod:`lrp2_interp.figures`) on a private Agg figure (:func:`~lrp2_interp.drawing.offscreen`:
nothing touches pyplot's global state or backend) and writes both files atomically
(:func:`~lrp2_interp.files.save_figure`, :func:`~lrp2_interp.files.write_table`); the CSV
has the PNG's name with ``.csv``.  To show a figure in a notebook instead, call the
``draw_*`` form (it returns the matplotlib Axes) or a result's ``.plot()``.

Generic: :func:`heatmap`, :func:`line_plot`.  One function per figure of the neuron
analysis and the demo: :func:`shared_neurons_heatmap`, :func:`overlap_gain_heatmap`,
:func:`attribution_heatmap`, :func:`relation_overlap_heatmap`, :func:`similarity_plot`.
Layer axes show the block index and the paper's layer number
(:func:`lrp2_interp.layers.layer_label`, e.g. ``"0 (L1)"``); the CSVs keep the block index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from lrp2_interp.drawing import LAYER_AXIS, draw_heatmap, draw_lines, matplotlib_rc, new_axes, offscreen
from lrp2_interp.errors import InputError
from lrp2_interp.figures import (
    MEASURES,
    attribution_tables,
    draw_attribution,
    draw_overlap_gain,
    draw_relation_overlap,
    draw_shared_neurons,
    draw_similarity,
    overlap_gain_table,
    relation_overlap_table,
    shared_neurons_table,
)
from lrp2_interp.files import save_figure, write_table
from lrp2_interp.languages import language_name

__all__ = [
    "LAYER_AXIS",
    "attribution_heatmap",
    "heatmap",
    "line_plot",
    "matplotlib_rc",
    "overlap_gain_heatmap",
    "relation_overlap_heatmap",
    "save_plot",
    "save_result",
    "shared_neurons_heatmap",
    "similarity_plot",
]


def save_plot(ax: Any, path: str | Path, table: pd.DataFrame) -> Path:
    """Write ``ax``'s figure as ``path`` (PNG; the suffix is added when missing) and ``table`` next to it as CSV."""
    path = Path(path)
    path = path if path.suffix else path.with_suffix(".png")
    save_figure(path, ax.figure)
    write_table(path.with_suffix(".csv"), table)
    return path


def save_result(folder: str | Path, name: str, frame: pd.DataFrame, draw: Callable[[Any], Any]) -> Path:
    """A result's ``.save(folder)``: ``draw(None)`` (its ``.plot``) as ``folder/name.png`` and ``frame`` as CSV."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with offscreen():
        ax = draw(None)
    return save_plot(ax, folder / f"{name}.png", frame)


def heatmap(
    df_pivot: pd.DataFrame,
    path: str | Path,
    title: str = "",
    center: float | None = None,
    fmt: str = ".2f",
    **options: Any,
) -> Path:
    """:func:`~lrp2_interp.drawing.draw_heatmap` of a pivoted table, saved as ``path`` (PNG) and its CSV.

    ``options``: ``annot``, ``cmap``, ``xlabel``, ``ylabel``, ``cbar_label``, ``xticklabels``,
    ``yticklabels`` (see ``draw_heatmap``); the CSV keeps the table's own index.  Returns the PNG path.
    """
    with offscreen():
        ax = draw_heatmap(df_pivot, title=title, center=center, fmt=fmt, **options)
    return save_plot(ax, path, df_pivot.reset_index())


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
    """:func:`~lrp2_interp.drawing.draw_lines` of ``y`` vs ``x``, saved as a PNG and the CSV of ``df``."""
    with offscreen():
        ax = draw_lines(df, x, y, hue, title=title, style=style, ylabel=ylabel)
    return save_plot(ax, path, df)


def shared_neurons_heatmap(
    by_layer: pd.DataFrame,
    path: str | Path,
    *,
    condition: str = "baseline",
    value: str = "n_shared",
    agg: str = "mean",
    title: str | None = None,
    source: str = "en",
) -> Path:
    """:func:`~lrp2_interp.figures.draw_shared_neurons` saved (layer x language: neurons shared with ``source``)."""
    with offscreen():
        ax = draw_shared_neurons(by_layer, condition=condition, value=value, agg=agg, title=title, source=source)
    return save_plot(ax, path, shared_neurons_table(by_layer, condition, value, agg).reset_index())


def overlap_gain_heatmap(gain: pd.DataFrame, path: str | Path, *, title: str | None = None, source: str = "en") -> Path:
    """:func:`~lrp2_interp.figures.draw_overlap_gain` saved (layer x language: mean change with LRP2)."""
    with offscreen():
        ax = draw_overlap_gain(gain, title=title, source=source)
    return save_plot(ax, path, overlap_gain_table(gain).reset_index())


def relation_overlap_heatmap(
    summary: pd.DataFrame,
    path: str | Path,
    *,
    value: str = "overlap_rate",
    title: str | None = None,
    source: str = "en",
) -> Path:
    """:func:`~lrp2_interp.figures.draw_relation_overlap` saved (same vs different relations vs chance per layer)."""
    with offscreen():
        ax = draw_relation_overlap(summary, value=value, title=title, source=source)
    return save_plot(ax, path, relation_overlap_table(summary, value).reset_index())


def attribution_heatmap(
    scores: torch.Tensor,
    path: str | Path,
    *,
    layers: Sequence[int] | None = None,
    top: int = 10,
    title: str = "Attribution of one fact: the top neurons of each layer",
) -> Path:
    """:func:`~lrp2_interp.figures.draw_attribution` saved; the CSV is the long table (layer, rank, neuron, score)."""
    with offscreen():
        ax = draw_attribution(scores, layers=layers, top=top, title=title)
    return save_plot(ax, path, attribution_tables(scores, layers, top)[2])


def similarity_plot(table: pd.DataFrame, path: str | Path, title: str | None = None, *, source: str = "en") -> Path:
    """Similarity to ``source`` per layer, one panel per measure in the table (cosine, centred cosine, CKA), + CSV.

    ``table`` is :func:`lrp2_interp.lrp2.similarity.similarity_table`'s (``.table``); a table
    without the centred cosine or CKA columns (an older CSV) gets the panels it has.
    """
    measures = [m for m in MEASURES if m in table.columns]
    if not measures:
        raise InputError(f"no similarity column ({', '.join(MEASURES)}) in the table", field="table")
    with offscreen():
        axes = new_axes(5.2 * len(measures) + 1.8, 4.2, ncols=len(measures))
        axes = list(axes) if len(measures) > 1 else [axes]
        for i, (ax, measure) in enumerate(zip(axes, measures)):
            last = i == len(measures) - 1
            draw_similarity(table, ax, measure=measure, legend=last, title=MEASURES[measure][1], source=source)
        name = language_name(source)
        axes[0].figure.suptitle(title or f"How similar each language's queries are to {name}'s, per layer", y=1.03)
    return save_plot(axes[0], path, table)
