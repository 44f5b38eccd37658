"""Choose an intervention's setting on dev facts, then score it on untouched test facts with its controls.

The one held-out routine for every intervention (LRP2's (m, n), mean steering, alignment, ...):

1. **Split.** Facts parallel in ``source`` and ``language`` are split by key ``(relation, lineid)``
   with a seeded hash (the same fact is dev or test in every language and run), then capped at
   ``max_dev`` / ``max_test`` in a seeded order.  Candidate pools are drawn by entity
   (``ProbeConfig(distractors="entity")``), so the source language ranks the same entities.
2. **Fit** on dev facts only (:meth:`Intervention.fit`).
3. **Search on dev** (``search="halving"``, successive halving): every setting on the first
   ``first_rung`` dev facts; the best ``1/eta`` (by dev Acc, then MRR) go on to ``eta`` times as
   many dev facts, and so on until all dev facts are used; the best survivor is chosen.
   ``"full"`` scores every setting on every dev fact.  ``"oracle"`` chooses on dev *and* test
   facts (the paper's choice; optimistic, labelled so).
4. **Test**: only the baseline, the chosen setting, ``n_controls`` matched-control draws, the
   extra controls, and the source language's baseline (for Trans) are probed on test facts.

The conditions that do not depend on the intervention (the baseline on dev and test facts, the
source's baseline) are scored by the language pair's :func:`pair_scorer`: interventions of one pair
that share it score them once, and draw the pair's candidate pools once.

The result is typed (:class:`SelectionResult`) and writes nothing; ``work`` compares the
fact-conditions probed with those the full-grid design (every setting on every fact) needs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet
from lrp2_interp.interventions.protocol import Intervention, Setting
from lrp2_interp.interventions.scoring import Scorer
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.probing.types import FactKey, ProbeConfig
from lrp2_interp.store import UnitStore

BASELINE, CHOSEN, SOURCE = "baseline", "chosen", "source baseline"
#: the scope (:class:`Scorer`) of a language pair's intervention-free conditions: BASELINE, SOURCE
SHARED_SCOPE = "intervention-free"


def control_name(k: int) -> str:
    return f"matched control {k}"


@dataclass(frozen=True)
class SelectionConfig:
    dev_fraction: float = 0.5
    max_dev: int | None = 200  # dev facts per language (None: all)
    max_test: int | None = 500  # test facts per language (None: all)
    search: Literal["halving", "full", "oracle"] = "halving"
    first_rung: int = 16  # dev facts every setting is scored on (halving)
    eta: int = 3  # keep 1/eta of the settings and use eta times the dev facts per rung
    n_controls: int = 5  # matched-control draws (seeds 0..n_controls-1)
    seed: int = 0
    probe: ProbeConfig = field(default_factory=lambda: ProbeConfig(max_candidates=10, distractors="entity"))

    def __post_init__(self) -> None:
        if not 0.0 < float(self.dev_fraction) < 1.0:
            raise InputError(f"dev_fraction must be in (0, 1), got {self.dev_fraction}", field="dev_fraction")
        for name in ("max_dev", "max_test"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise InputError(f"{name} must be a positive integer or None, got {v!r}", field=name)
        if self.search not in ("halving", "full", "oracle"):
            raise InputError(f"search must be halving, full or oracle, got {self.search!r}", field="search")
        if int(self.first_rung) < 1 or int(self.eta) < 2:
            raise InputError("first_rung must be >= 1 and eta >= 2", field="eta")
        if not 0 <= int(self.n_controls) <= 1000:
            raise InputError(f"n_controls must be in [0, 1000], got {self.n_controls}", field="n_controls")


def split_keys(keys: Sequence[FactKey], config: SelectionConfig) -> tuple[list[FactKey], list[FactKey]]:
    """(dev, test) keys: membership by a seeded hash of the key, order (and caps) by another."""

    def u(tag: str, key: FactKey) -> float:
        return random.Random(f"{config.seed}-{tag}-{key[0]}-{key[1]}").random()

    ordered = sorted(keys, key=lambda k: (u("order", k), k))
    dev = [k for k in ordered if u("split", k) < config.dev_fraction]
    test = [k for k in ordered if u("split", k) >= config.dev_fraction]
    return dev[: config.max_dev], test[: config.max_test]


@dataclass(frozen=True)
class SelectionResult:
    """What :func:`select_and_score` found for one intervention and language (see the module docstring)."""

    config: SelectionConfig
    model_name: str
    method: str
    title: str
    language: str
    source: str
    chosen: Setting
    chosen_label: str
    search: pd.DataFrame  # rung, setting, n_dev, dev_acc, dev_mrr, kept
    facts_table: pd.DataFrame  # split, language, condition, relation, lineid, correct, rank, n_candidates
    work: dict

    def correct(self, condition: str, language: str | None = None, split: str = "test") -> pd.Series:
        """Per-fact correctness on ``split`` of one condition, indexed by (relation, lineid)."""
        t = self.facts_table
        sel = (t["split"] == split) & (t["condition"] == condition) & (t["language"] == (language or self.language))
        return t[sel].set_index(["relation", "lineid"])["correct"].astype(bool).sort_index()

    def conditions(self, split: str = "test") -> list[str]:
        t = self.facts_table
        return list(dict.fromkeys(t.loc[(t["split"] == split) & (t["language"] == self.language), "condition"]))

    def to_frame(self) -> pd.DataFrame:
        return self.facts_table


def pair_scorer(
    lm: LanguageModel,
    facts: FactSet,
    source: str,
    language: str,
    config: SelectionConfig,
    *,
    store: UnitStore | None = None,
    tick: Callable[[int], None] | None = None,
) -> Scorer:
    """The :class:`Scorer` of the (``source``, ``language``) pair's intervention-free conditions.

    Pass it to every :func:`select_and_score` of the pair on ``facts`` with ``config`` (and ``store``):
    the baseline and the source's baseline are scored once for all of them, and its query set draws
    the pair's candidate pools once.
    """
    facts.check_languages([source, language])
    pair = facts.select_languages([source, language]).parallel([source, language])
    return Scorer(lm, pair, config.probe, store=store, scope=SHARED_SCOPE, tick=tick)


def select_and_score(
    lm: LanguageModel,
    facts: FactSet,
    intervention: Intervention,
    config: SelectionConfig,
    *,
    store: UnitStore | None = None,
    tick: Callable[[int], None] | None = None,
    shared: Scorer | None = None,
) -> SelectionResult:
    """Fit on dev facts, search the grid on dev, score the choice and its controls on test facts.

    ``shared``: the pair's :func:`pair_scorer` (same ``facts``, ``config`` and ``store``) when several
    interventions of the pair are run; ``None``: one is built.
    """
    lang, src = intervention.language, intervention.source
    facts.check_languages([src, lang])
    shared = shared or pair_scorer(lm, facts, src, lang, config, store=store, tick=tick)
    if shared.facts.languages != (src, lang) or shared.config != config.probe:
        raise ValueError(f"the shared scorer is not the pair scorer of ({src}, {lang}) with this probe config")
    pair, shared_work = shared.facts, shared.work
    dev, test = split_keys(pair.keys(lang), config)
    if not dev or not test:
        raise InputError(f"{lang}: {len(dev)} dev and {len(test)} test facts; both must be non-empty", field="facts")
    fitted = intervention.fit(lm, facts.restrict_keys(dev))
    scorer = Scorer(lm, pair, config.probe, queries=shared.queries, store=store, scope=fitted.name, tick=tick)
    settings = list(fitted.settings())
    labels = {s: fitted.label(s) for s in settings}
    if len(set(labels.values())) != len(labels):
        raise InputError(f"{fitted.name}: two settings share a label", field="settings")
    search_keys = dev + test if config.search == "oracle" else dev
    chosen, search = _search(scorer, fitted, settings, labels, search_keys, config)
    frames = []
    dev_rows = shared.score(lang, {BASELINE: []}, search_keys).assign(split="dev", language=lang)
    frames.append(dev_rows)
    for label in search["setting"].unique():
        n = int(search.loc[search["setting"] == label, "n_dev"].max())
        setting = next(s for s in settings if labels[s] == label)
        rows = scorer.score(lang, {label: fitted.hooks(setting)}, search_keys[:n])
        frames.append(rows.assign(split="dev", language=lang))
    conditions = {CHOSEN: fitted.hooks(chosen)}
    conditions.update({control_name(k): fitted.control(chosen, k) for k in range(config.n_controls)})
    conditions.update(fitted.extra_controls(chosen))
    frames.append(shared.score(lang, {BASELINE: []}, test).assign(split="test", language=lang))
    frames.append(scorer.score(lang, conditions, test).assign(split="test", language=lang))
    frames.append(shared.score(src, {SOURCE: []}, test).assign(split="test", language=src))
    table = pd.concat(frames, ignore_index=True)
    n_all = len(dev) + len(test)
    work = {
        "fact_conditions": scorer.work + shared.work - shared_work,  # a shared condition counts where scored
        "full_grid": (len(settings) + 1) * n_all + len(test),
        "n_dev": len(dev),
        "n_test": len(test),
        "n_settings": len(settings),
    }
    return SelectionResult(
        config, lm.name, fitted.name, fitted.title, lang, src, chosen, labels[chosen], search, table, work
    )


def _search(scorer: Scorer, fitted, settings, labels, keys: Sequence[FactKey], config: SelectionConfig):
    lang = fitted.language
    alive = list(settings)
    n = len(keys) if config.search != "halving" else min(config.first_rung, len(keys))
    rungs = []
    rung = 0
    while True:
        rows = scorer.score(lang, {labels[s]: fitted.hooks(s) for s in alive}, keys[:n])
        stats = rows.groupby("condition", sort=False).agg(
            dev_acc=("correct", lambda c: 100.0 * c.mean()), dev_mrr=("rank", lambda r: (1.0 / r).mean())
        )
        order = sorted(alive, key=lambda s: (-stats.loc[labels[s], "dev_acc"], -stats.loc[labels[s], "dev_mrr"]))
        last = n >= len(keys) or len(alive) == 1
        keep = 1 if last else max(1, math.ceil(len(alive) / config.eta))
        for i, s in enumerate(order):
            rungs.append(
                {
                    "rung": rung,
                    "setting": labels[s],
                    "n_dev": n,
                    "dev_acc": float(stats.loc[labels[s], "dev_acc"]),
                    "dev_mrr": float(stats.loc[labels[s], "dev_mrr"]),
                    "kept": i < keep,
                }
            )
        if last:
            return order[0], pd.DataFrame(rungs)
        alive, n, rung = order[:keep], min(len(keys), n * config.eta), rung + 1
