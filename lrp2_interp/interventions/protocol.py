"""The Intervention protocol: a grid of settings, an optional fit on dev facts, hooks, and a matched control.

An intervention is *where* and *what* in one object (pyvene separates the two; here a
setting names both):

* ``name``: a short key (``"lrp2"``, ``"mean_steering"``, ...) and ``title`` for tables;
* ``settings()``: the grid the selection routine searches (hashable values, e.g. ``(m, n)``);
* ``fit(lm, facts)``: learn what the intervention needs from *dev* facts only (language
  vectors, maps, neurons) and return the fitted intervention (or itself);
* ``hooks(setting)``: ordinary TransformerLens ``fwd_hooks`` that apply it;
* ``control(setting, seed)``: ``fwd_hooks`` of its matched control -- everything of the
  intervention kept except the property under test (same norms, same cancellation
  structure); several seeds give a distribution;
* ``extra_controls(setting)``: other named controls on the same test facts (e.g. LRP2's
  wrong-language control); may be empty;
* ``label(setting)``: how a setting is written in tables (``"(3, 9)"``, ``"alpha=+0.50"``).

:func:`lrp2_interp.interventions.selection.select_and_score` takes any object with these
members: a new method is one class in one file plus a test.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from lrp2_interp.facts import FactSet
from lrp2_interp.models.loading import FwdHooks, LanguageModel

Setting = Hashable


@runtime_checkable
class Intervention(Protocol):
    name: str
    title: str
    language: str
    source: str

    def settings(self) -> Sequence[Setting]: ...

    def fit(self, lm: LanguageModel, facts: FactSet) -> Intervention: ...

    def hooks(self, setting: Setting) -> FwdHooks: ...

    def control(self, setting: Setting, seed: int) -> FwdHooks: ...

    def extra_controls(self, setting: Setting) -> Mapping[str, FwdHooks]: ...

    def label(self, setting: Setting) -> str: ...
