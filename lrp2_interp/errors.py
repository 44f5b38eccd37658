"""The package's two exceptions: bad input, always naming where the problem is, and a fast path that cannot run.

Every user-facing failure (a malformed file, an unknown language, a layer out of
range) is raised as :class:`InputError`.  The CLI prints ``str(err)`` and exits
with status 2 instead of a traceback from deep inside torch.

:class:`Unsupported` is internal: a fast path (attribution, probing, the sweep) cannot run this
model or these hooks exactly, and its caller falls back to the reference path.
"""

from __future__ import annotations

import numbers
from pathlib import Path


class InputError(ValueError):
    """Bad user input: carries the file, line and field it refers to (where known)."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.message = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file if self.line is None else f"{self.file}:{self.line}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class Unsupported(Exception):
    """A fast path cannot run this model or these hooks exactly (the caller falls back to the reference)."""


def check_layer(layer: int, n_layers: int, *, field: str = "layer") -> int:
    """Return ``layer`` (as ``int``; numpy integers accepted) if ``0 <= layer < n_layers``; else :class:`InputError`."""
    if not isinstance(layer, numbers.Integral) or isinstance(layer, bool) or not 0 <= int(layer) < n_layers:
        raise InputError(
            f"layer {layer!r} is out of range: the model has {n_layers} layers (0..{n_layers - 1})",
            field=field,
        )
    return int(layer)
