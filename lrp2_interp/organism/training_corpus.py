"""The model organism's training corpus: which facts each language sees, and bridging lines.

Rules (see :mod:`lrp2_interp.organism.train` for why):

* English sees every fact: one sentence per fact, its English template filled with
  the English subject and object.
* Every other language ``l`` sees only the *seen* facts: per relation a fraction
  ``seen_fraction`` of the line ids, drawn with the seed.  The *held-out* ids are the
  same in every non-English language, so a held-out fact occurs in English only.
* Bridging lines (each switchable in :class:`BridgeConfig`):

  - ``dictionary``: entity-name pairs ``"<l name> = <en name>"`` and the reverse for
    every subject and object name of ``l`` (held-out facts' entities included: a
    name pair states no fact);
  - ``code_switch``: seen facts only -- the English template with the ``l`` names,
    and the ``l`` template with the English names;
  - ``parallel``: seen facts only -- the English sentence followed by the ``l`` one.

Held-out facts of ``l`` never appear in any line that involves ``l``; every line
carries its provenance (kind, languages, line id) so tests can check that.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from lrp2_interp.errors import InputError
from lrp2_interp.fact_files import OBJECT, SUBJECT, Fact
from lrp2_interp.facts import FactSet
from lrp2_interp.prompts import render_filled

PIVOT = "en"
LineKind = Literal["fact", "dictionary", "code_switch", "parallel"]


@dataclass(frozen=True)
class BridgeConfig:
    """Which bridging lines tie the non-English languages to English."""

    dictionary: bool = True
    dictionary_repeats: int = 1  # copies of each dictionary line per epoch
    code_switch: bool = True
    mix_entities: bool = False  # code-switch every (template, subject, object) language mix, not just two
    parallel: bool = False


@dataclass(frozen=True)
class CorpusLine:
    """One training sentence and where it comes from.

    ``obj_span`` is the character span of the (last) object in ``text`` (masked-LM
    object masking); ``lineid`` is ``None`` for lines that state no fact.
    """

    text: str
    kind: LineKind
    languages: tuple[str, ...]
    lineid: int | None = None
    relation: str | None = None
    obj_span: tuple[int, int] | None = None


@dataclass(frozen=True)
class FactSplit:
    """Seen and held-out line ids of one non-English language."""

    language: str
    seen: tuple[int, ...]
    held_out: tuple[int, ...]


@dataclass(frozen=True)
class Corpus:
    lines: tuple[CorpusLine, ...]
    splits: dict[str, FactSplit]
    bridge: BridgeConfig

    @property
    def texts(self) -> list[str]:
        return [ln.text for ln in self.lines]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for ln in self.lines:
            out[ln.kind] = out.get(ln.kind, 0) + 1
        return out

    def digest(self) -> str:
        h = hashlib.sha256()
        for ln in self.lines:
            h.update(ln.text.encode("utf-8") + b"\n")
        return h.hexdigest()[:16]


def split_facts(facts: FactSet, languages: Sequence[str], seen_fraction: float, seed: int) -> dict[str, FactSplit]:
    """Per non-English language: seen/held-out ids (only facts that also exist in English).

    The draw is per relation over the union of the line ids of the non-English
    languages, so every language holds out the same facts.
    """
    if not 0.0 <= seen_fraction <= 1.0:
        raise InputError(f"seen_fraction must be in [0, 1], got {seen_fraction}", field="seen_fraction")
    others = [lang for lang in languages if lang != PIVOT]
    en_ids = {(f.relation, f.lineid) for f in facts.iter_facts(PIVOT)}
    seen_keys: set[tuple[str, int]] = set()
    for rel in facts.relations:
        ids = sorted(
            {f.lineid for lang in others for f in facts.facts_of(lang, rel)} & {i for r, i in en_ids if r == rel}
        )
        random.Random(f"{seed}-{rel}").shuffle(ids)
        cut = round(seen_fraction * len(ids))
        seen_keys |= {(rel, i) for i in ids[:cut]}
    out = {}
    for lang in others:
        keys = [(f.relation, f.lineid) for f in facts.iter_facts(lang) if (f.relation, f.lineid) in en_ids]
        out[lang] = FactSplit(
            lang,
            seen=tuple(sorted(i for k in keys if k in seen_keys for i in [k[1]])),
            held_out=tuple(sorted(i for k in keys if k not in seen_keys for i in [k[1]])),
        )
    return out


def _render(template: str, subject: str, obj: str) -> tuple[str, tuple[int, int]]:
    """Filled template and the character span of the object."""
    head = template.split(OBJECT)[0].replace(SUBJECT, subject)
    return render_filled(template, subject, obj), (len(head), len(head) + len(obj))


def _en_twins(facts: FactSet) -> dict[tuple[str, int], Fact]:
    return {(f.relation, f.lineid): f for f in facts.iter_facts(PIVOT)}


def _fact_lines(facts: FactSet, language: str, ids: Iterable[int]) -> list[CorpusLine]:
    keep = set(ids)
    out = []
    for fact in facts.iter_facts(language):
        if fact.lineid in keep:
            text, span = _render(facts.template(language, fact.relation).template, fact.sub_label, fact.obj_label)
            out.append(CorpusLine(text, "fact", (language,), fact.lineid, fact.relation, span))
    return out


def _dictionary_lines(facts: FactSet, language: str, repeats: int) -> list[CorpusLine]:
    twins = _en_twins(facts)
    pairs: set[tuple[str, str]] = set()
    for fact in facts.iter_facts(language):
        en = twins.get((fact.relation, fact.lineid))
        if en is None:
            continue
        pairs |= {(fact.sub_label, en.sub_label), (fact.obj_label, en.obj_label)}
    out = []
    for name_l, name_en in sorted(pairs):
        if name_l == name_en:
            continue
        for _ in range(repeats):
            out.append(CorpusLine(f"{name_l} = {name_en}", "dictionary", (language, PIVOT)))
            out.append(CorpusLine(f"{name_en} = {name_l}", "dictionary", (PIVOT, language)))
    return out


_L = "l"
# (template, subject, object) languages of code-switched lines; the first two are the name swaps
_MIXES = ((PIVOT, _L, _L), (_L, PIVOT, PIVOT), (PIVOT, _L, PIVOT), (PIVOT, PIVOT, _L), (_L, _L, PIVOT), (_L, PIVOT, _L))


def _bridge_fact_lines(facts: FactSet, language: str, seen: Iterable[int], bridge: BridgeConfig) -> list[CorpusLine]:
    twins = _en_twins(facts)
    keep = set(seen)
    out = []
    for fact in facts.iter_facts(language):
        en = twins.get((fact.relation, fact.lineid))
        if fact.lineid not in keep or en is None:
            continue
        tpl_l = facts.template(language, fact.relation).template
        tpl_en = facts.template(PIVOT, fact.relation).template
        if bridge.code_switch:
            mixes = _MIXES if bridge.mix_entities else _MIXES[:2]
            for tpl_lang, sub_lang, obj_lang in mixes:
                text, span = _render(
                    tpl_en if tpl_lang == PIVOT else tpl_l,
                    en.sub_label if sub_lang == PIVOT else fact.sub_label,
                    en.obj_label if obj_lang == PIVOT else fact.obj_label,
                )
                out.append(
                    CorpusLine(
                        text,
                        "code_switch",
                        (PIVOT, language),
                        obj_span=span,
                        lineid=fact.lineid,
                        relation=fact.relation,
                    )
                )
        if bridge.parallel:
            en_text, _ = _render(tpl_en, en.sub_label, en.obj_label)
            l_text, (a, b) = _render(tpl_l, fact.sub_label, fact.obj_label)
            off = len(en_text) + 1
            out.append(
                CorpusLine(
                    f"{en_text} {l_text}",
                    "parallel",
                    (PIVOT, language),
                    obj_span=(a + off, b + off),
                    lineid=fact.lineid,
                    relation=fact.relation,
                )
            )
    return out


def build_corpus(
    facts: FactSet, languages: Sequence[str], seen_fraction: float, seed: int, bridge: BridgeConfig = BridgeConfig()
) -> Corpus:
    """All training lines (deterministic for a seed; not shuffled)."""
    if PIVOT not in languages:
        raise InputError(
            f"the organism needs English ('{PIVOT}') among its languages, got {list(languages)}", field="languages"
        )
    facts.check_languages(languages, field="languages")
    splits = split_facts(facts, languages, seen_fraction, seed)
    lines = _fact_lines(facts, PIVOT, facts.lineids(PIVOT))
    for lang, split in splits.items():
        lines += _fact_lines(facts, lang, split.seen)
        if bridge.dictionary:
            lines += _dictionary_lines(facts, lang, bridge.dictionary_repeats)
        lines += _bridge_fact_lines(facts, lang, split.seen, bridge)
    return Corpus(tuple(lines), splits, bridge)


def leaked_lines(corpus: Corpus, facts: FactSet) -> list[tuple[str, int, str]]:
    """``(language, lineid, text)`` for every line that shows a held-out fact in its language.

    Checks provenance (a line of language ``l`` derived from a held-out id) and text
    (any template of ``l`` or English filled with any mix of the ``l``/English names
    of the held-out fact, found inside a line that involves ``l``).  Empty = sound.
    """
    twins = _en_twins(facts)
    out = []
    for lang, split in corpus.splits.items():
        held = set(split.held_out)
        mine = [ln for ln in corpus.lines if lang in ln.languages]
        for ln in mine:
            if ln.lineid in held and ln.relation is not None:
                out.append((lang, ln.lineid, ln.text))
        for fact in facts.iter_facts(lang):
            if fact.lineid not in held:
                continue
            en = twins[(fact.relation, fact.lineid)]
            renders = {
                render_filled(facts.template(tl, fact.relation).template, s, o)
                for tl in (lang, PIVOT)
                for s in (fact.sub_label, en.sub_label)
                for o in (fact.obj_label, en.obj_label)
                if (tl, s, o) != (PIVOT, en.sub_label, en.obj_label)
            }
            for ln in mine:
                if any(r in ln.text for r in renders):
                    out.append((lang, fact.lineid, ln.text))
    return out
