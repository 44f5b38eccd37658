"""Fonts for multilingual figure labels: which installed font draws which script, and a clean fallback.

Every figure of :mod:`lrp2_interp.plots` asks :func:`font_plan` for the families that cover its labels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=512)
def _charmap(path: str) -> frozenset[int]:
    """The code points a font file covers (read once per process and file)."""
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(path).get_charmap())


@dataclass(frozen=True)
class FontPlan:
    """How to draw some labels: the font families (default first, then fallbacks) and the uncovered characters."""

    families: tuple[str, ...]
    uncovered: frozenset[str]

    def clean(self, label: Any) -> Any:
        """``label`` with every character no installed font covers drawn as ``?`` (non-strings unchanged)."""
        if not isinstance(label, str) or not self.uncovered:
            return label
        return "".join("?" if c in self.uncovered else c for c in label)

    def rc(self) -> dict[str, Any]:
        return {"font.family": list(self.families)}


def font_plan(labels: Iterable[Any]) -> FontPlan:
    """Fallback fonts for ``labels`` so that they render without missing-glyph boxes or font warnings.

    The default font (DejaVu Sans) has no CJK, Devanagari, Gurmukhi... glyphs.  Any
    installed font that covers such characters (e.g. Debian's ``fonts-noto-cjk``)
    is added as a fallback family; characters that no installed font covers are
    drawn as ``?`` by :meth:`FontPlan.clean` (the CSV next to every PNG keeps the
    exact labels).  No font is a dependency: the one CJK font on PyPI found for this
    (``manimgx-fonts-cjk``, Noto Sans CJK) is a 20 MB wheel, 33 MB installed, a
    variable font matplotlib draws in its thinnest weight, and covers no Indic script.
    """
    from matplotlib import font_manager, rcParams

    base_family = tuple(rcParams["font.family"])
    base = _charmap(font_manager.findfont(font_manager.FontProperties(family=list(base_family))))
    missing = {c for label in labels if isinstance(label, str) for c in label if not c.isspace() and ord(c) not in base}
    families: list[str] = []
    if missing:  # read the other installed fonts' character maps only when needed
        for entry in font_manager.fontManager.ttflist:
            try:
                covered = {c for c in missing if ord(c) in _charmap(entry.fname)}
            except (OSError, RuntimeError):
                continue
            if entry.name.startswith("Last Resort"):  # its glyphs are boxes: a clean '?' is clearer
                continue
            if covered and entry.name not in families and entry.name not in base_family:
                families.append(entry.name)
                missing -= covered
            if not missing:
                break
    return FontPlan(base_family + tuple(families), frozenset(missing))
