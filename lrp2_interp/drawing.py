"""Figures drawn onto a matplotlib Axes: the one drawing code path behind every figure and result ``.plot()``.

Each ``draw_*`` function takes a table, draws on ``ax`` (or on a new figure when
``ax`` is None) and returns the Axes; it never writes a file.  A new figure is a
pyplot figure, so a notebook shows it, except inside :func:`offscreen`, where it
is a private Agg figure (:mod:`lrp2_interp.plots` draws there and saves the PNG,
so scripts and tests leave no pyplot figure behind).  Layer axes get integer
ticks labelled with the block index and the paper's layer number
(:func:`lrp2_interp.layers.layer_labels`, e.g. ``"0 (L1)"``).
"""

from __future__ import annotations

import contextvars
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from lrp2_interp.errors import InputError
from lrp2_interp.fonts import FontPlan, font_plan
from lrp2_interp.layers import layer_labels

MAX_ANNOTATED_CELLS = 400
LAYER_AXIS = "layer: block index (paper layer)"
_OFFSCREEN = contextvars.ContextVar("offscreen", default=False)


@contextmanager
def offscreen() -> Iterator[None]:
    """New figures inside are private Agg figures (not pyplot's): for drawing that is saved, not shown."""
    token = _OFFSCREEN.set(True)
    try:
        yield
    finally:
        _OFFSCREEN.reset(token)


def new_axes(width: float, height: float, ncols: int = 1) -> Any:
    """A new figure's Axes (``ncols > 1``: an array of them); pyplot's unless inside :func:`offscreen`."""
    if _OFFSCREEN.get():
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(width, height))
        FigureCanvasAgg(fig)
        return fig.subplots(1, ncols, squeeze=True)
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(width, height), squeeze=True)[1]


def axes_grid(n: int, ncols: int = 3, *, width: float = 4.8, height: float = 3.6) -> list[Any]:
    """``n`` Axes of one new figure, ``ncols`` per row (each ``width`` x ``height`` inches), as a flat list.

    For drawing several results side by side: ``for ax, r in zip(lx.axes_grid(2), results): r.plot(ax=ax)``.
    Cells of the last row beyond ``n`` are hidden.  A pyplot figure unless inside :func:`offscreen`.
    """
    if not isinstance(n, int) or n < 1 or not isinstance(ncols, int) or ncols < 1:
        raise InputError(f"need n >= 1 axes and ncols >= 1, got n={n!r}, ncols={ncols!r}", field="n")
    cols = min(n, ncols)
    rows = -(-n // cols)
    size = (width * cols, height * rows)
    if _OFFSCREEN.get():
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(fig)
    else:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=size, layout="constrained")
    axes = list(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return axes[:n]


@contextmanager
def matplotlib_rc(params: dict[str, Any]) -> Iterator[None]:
    """Settings for the figures drawn inside; on exit only those settings are restored.

    Unlike matplotlib's ``rc_context``, which restores every setting, it keeps what the body
    changed: the first figure of an IPython kernel loads the inline backend, which switches
    interactive mode on, and restoring that switch would hide every later figure of the notebook.
    """
    from matplotlib import rcParams

    rc: Any = rcParams  # matplotlib's stubs type the keys as a Literal of every rc name
    before = {key: rc[key] for key in params}
    rc.update(params)
    try:
        yield
    finally:
        rc.update(before)


def pin_fonts(ax: Any, plan: FontPlan) -> None:
    """Give every text of ``ax``'s figure the plan's font families, so it renders the same outside the rc context."""
    from matplotlib.text import Text

    for text in ax.figure.findobj(Text):
        text.set_fontfamily(list(plan.families))


def layer_ticks(ax: Any, layers: Sequence[int], axis: str = "x") -> None:
    """Integer ticks at ``layers`` labelled ``"block (Lpaper)"`` on ``ax``'s ``axis`` (``"x"`` or ``"y"``)."""
    ticks = sorted({int(b) for b in layers})
    setter = ax.set_xticks if axis == "x" else ax.set_yticks
    setter(ticks, layer_labels(ticks))
    if axis == "x" and len(ticks) > 8:  # "12 (L13)" labels overlap when there are many layers
        ax.tick_params(axis="x", labelrotation=60)
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(LAYER_AXIS)


def draw_heatmap(
    df_pivot: pd.DataFrame,
    ax: Any = None,
    *,
    title: str = "",
    center: float | None = None,
    fmt: str = ".2f",
    annot: bool | pd.DataFrame | None = None,
    cmap: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    cbar_label: str | None = None,
    xticklabels: Sequence[str] | None = None,
    yticklabels: Sequence[str] | None = None,
) -> Any:
    """Heatmap of a pivoted table (rows x columns) on ``ax``; returns the Axes.

    ``center`` switches to a diverging colormap (``RdBu_r``) centred there, with limits
    symmetric around it.  ``annot``: ``True``/``False`` to write the values (default: only
    when the table has at most 400 cells), or a same-shape frame of labels.  NaN cells are
    blank.  ``xticklabels`` / ``yticklabels`` replace the tick labels of the columns / rows.
    """
    import seaborn as sns

    if df_pivot.empty:
        raise InputError("nothing to plot: the table is empty", field="df_pivot")
    data = df_pivot.apply(pd.to_numeric, errors="coerce")
    labels = (
        annot.reindex(index=data.index, columns=data.columns).astype(str) if isinstance(annot, pd.DataFrame) else None
    )
    texts = [title, xlabel, ylabel, cbar_label, *data.index, *data.columns, data.index.name, data.columns.name]
    texts += [*(xticklabels or ()), *(yticklabels or ())]
    plan = font_plan(texts + (labels.to_numpy().ravel().tolist() if labels is not None else []))
    data = data.rename(index=plan.clean, columns=plan.clean)
    data.index.name, data.columns.name = plan.clean(data.index.name), plan.clean(data.columns.name)
    kw: dict[str, Any] = {"cmap": cmap or ("RdBu_r" if center is not None else "viridis")}
    if center is not None:
        span = np.nanmax(np.abs(data.to_numpy(float) - center)) if data.notna().any().any() else 1.0
        span = span if span > 0 else 1.0
        kw.update(center=center, vmin=center - span, vmax=center + span)
    if labels is not None:
        kw.update(annot=labels.map(plan.clean).to_numpy(), fmt="")
    else:
        kw.update(annot=(data.size <= MAX_ANNOTATED_CELLS) if annot is None else annot, fmt=fmt)
    for axis, given in (("x", xticklabels), ("y", yticklabels)):
        kw[f"{axis}ticklabels"] = [plan.clean(t) for t in given] if given is not None else "auto"
    with matplotlib_rc(plan.rc()):
        n_rows, n_cols = data.shape
        ax = ax if ax is not None else new_axes(min(24.0, 1.6 + 0.55 * n_cols), min(24.0, 1.4 + 0.4 * n_rows))
        with warnings.catch_warnings():  # seaborn's centred colormap uses a deprecated matplotlib setter
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            sns.heatmap(data, ax=ax, annot_kws={"fontsize": 7}, cbar_kws={"label": plan.clean(cbar_label or "")}, **kw)
        ax.set_title(plan.clean(title))
        ax.set_xlabel(plan.clean(xlabel if xlabel is not None else str(data.columns.name or "")))
        ax.set_ylabel(plan.clean(ylabel if ylabel is not None else str(data.index.name or "")))
        pin_fonts(ax, plan)
    return ax


def draw_lines(
    df: pd.DataFrame,
    x: str,
    y: str,
    hue: str | None = None,
    ax: Any = None,
    *,
    title: str = "",
    style: str | None = None,
    ylabel: str | None = None,
    legend: bool = True,
) -> Any:
    """Seaborn line plot of ``y`` vs ``x`` (markers on) on ``ax``; a ``x="layer"`` axis gets layer ticks."""
    import seaborn as sns

    missing = [c for c in (x, y, hue, style) if c is not None and c not in df.columns]
    if missing:
        raise InputError(f"columns {missing} not in the table (have {list(df.columns)})", field="columns")
    if df.empty:
        raise InputError("nothing to plot: the table is empty", field="df")
    groups = [c for c in (hue, style) if c is not None]
    plan = font_plan([title, ylabel, x, y, *groups, *(v for c in groups for v in df[c].unique())])
    shown = df.assign(**{c: df[c].map(plan.clean) for c in groups}) if plan.uncovered else df
    with matplotlib_rc(plan.rc()):
        ax = ax if ax is not None else new_axes(7.0, 4.2)
        sns.lineplot(
            data=shown, x=x, y=y, hue=hue, style=style, markers=True, dashes=True, ax=ax, errorbar=None, legend=legend
        )
        ax.set_title(plan.clean(title))
        if ylabel:
            ax.set_ylabel(plan.clean(ylabel))
        if x == "layer":
            layer_ticks(ax, pd.to_numeric(df[x]).dropna().astype(int).tolist())
        if ax.get_legend() is not None:
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        pin_fonts(ax, plan)
    return ax
