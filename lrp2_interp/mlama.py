"""mLAMA-layout fact sets: loading, validation, parallel facts and prompt rendering.

Layout (the official mLAMA 1.1 release, ``../shared/data/facts`` and ``data/facts``)::

    {root}/{lang}/templates.jsonl   {"relation": "P36", "template": "The capital of [X] is [Y] .", ...}
    {root}/{lang}/{relation}.jsonl  {"lineid": 1, "sub_label": "France", "obj_label": "Paris",
                                     "obj_aliases": [...], ...}

Facts with the same ``lineid`` in two languages are the same fact (parallel).
Every malformed line raises :class:`~lrp2_interp.errors.InputError` naming the
file, the line and the field.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .errors import InputError

SUBJECT, OBJECT = "[X]", "[Y]"
_INT = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class Relation:
    relation: str
    language: str
    template: str
    label: str = ""


@dataclass(frozen=True)
class Fact:
    lineid: int
    relation: str
    language: str
    sub_label: str
    obj_label: str
    sub_uri: str = ""
    obj_uri: str = ""
    obj_aliases: tuple[str, ...] = ()

    def is_correct(self, prediction: str) -> bool:
        """A prediction is correct if it is the object label or one of its aliases."""
        return prediction == self.obj_label or prediction in self.obj_aliases


@dataclass(frozen=True)
class FactSet:
    """Facts and templates of some languages and relations, as loaded from ``root``."""

    root: Path
    languages: tuple[str, ...]
    relations: tuple[str, ...]
    templates: dict[tuple[str, str], Relation] = field(repr=False)
    facts: dict[tuple[str, str], tuple[Fact, ...]] = field(repr=False)
    candidate_sets: dict[tuple[str, str], tuple[str, ...]] = field(repr=False)

    def facts_of(self, language: str, relation: str) -> tuple[Fact, ...]:
        return self.facts.get((language, relation), ())

    def template(self, language: str, relation: str) -> Relation:
        return self.templates[(language, relation)]

    def candidates(self, language: str, relation: str) -> tuple[str, ...]:
        """All object labels of the relation in that language (typed probing's ranking pool)."""
        return self.candidate_sets[(language, relation)]

    def iter_facts(self, language: str) -> Iterator[Fact]:
        for rel in self.relations:
            yield from self.facts_of(language, rel)

    def n_facts(self, language: str) -> int:
        return sum(len(self.facts_of(language, r)) for r in self.relations)

    def lineids(self, language: str) -> set[int]:
        return {f.lineid for f in self.iter_facts(language)}

    def restrict(self, lineids: Iterable[int]) -> "FactSet":
        """The same set keeping only the given line ids (candidate sets unchanged)."""
        keep = set(lineids)
        facts = {k: tuple(f for f in v if f.lineid in keep) for k, v in self.facts.items()}
        return FactSet(self.root, self.languages, self.relations, self.templates, facts, self.candidate_sets)

    def restrict_relations(self, relations: Sequence[str]) -> "FactSet":
        """The same set keeping only ``relations``."""
        keep = tuple(r for r in self.relations if r in set(relations))
        facts = {k: v for k, v in self.facts.items() if k[1] in keep}
        return FactSet(self.root, self.languages, keep, self.templates, facts, self.candidate_sets)

    def parallel(self, languages: Sequence[str] | None = None) -> "FactSet":
        """Keep only facts present (same ``lineid``) in every one of ``languages``."""
        langs = list(languages or self.languages)
        common = set.intersection(*(self.lineids(lang) for lang in langs))
        return self.restrict(common)

    def split(self, fraction: float, seed: int = 0) -> tuple["FactSet", "FactSet"]:
        """Split facts by line id into (first, rest) with ``fraction`` in the first part."""
        ids = sorted(set().union(*(self.lineids(lang) for lang in self.languages)))
        random.Random(seed).shuffle(ids)
        cut = int(round(fraction * len(ids)))
        return self.restrict(ids[:cut]), self.restrict(ids[cut:])


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as err:
                raise InputError(f"malformed JSON ({err.msg} at column {err.colno})", file=path, line=lineno) from None
            if not isinstance(obj, dict):
                raise InputError("expected a JSON object per line", file=path, line=lineno)
            yield lineno, obj


def _field(obj: dict, name: str, path: Path, lineno: int, kind: type = str):
    if name not in obj:
        raise InputError("missing field", file=path, line=lineno, field=name)
    value = obj[name]
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not _INT.fullmatch(str(value).strip()):
            raise InputError(f"expected an integer, got {value!r}", file=path, line=lineno, field=name)
        return int(value)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"expected a non-empty string, got {value!r}", file=path, line=lineno, field=name)
    return value.strip()


def validate_template(template: str, *, file: Path | str | None = None, line: int | None = None) -> str:
    for slot in (SUBJECT, OBJECT):
        if template.count(slot) != 1:
            raise InputError(
                f"template must contain {slot} exactly once: {template!r}", file=file, line=line, field="template"
            )
    return template


def read_templates(path: Path, language: str) -> dict[str, Relation]:
    out: dict[str, Relation] = {}
    for lineno, obj in _read_jsonl(path):
        rel = _field(obj, "relation", path, lineno)
        tpl = validate_template(_field(obj, "template", path, lineno), file=path, line=lineno)
        out[rel] = Relation(rel, language, tpl, str(obj.get("label", "")))
    return out


def read_facts(path: Path, language: str, relation: str) -> tuple[Fact, ...]:
    facts = []
    seen: set[int] = set()
    for lineno, obj in _read_jsonl(path):
        lineid = _field(obj, "lineid", path, lineno, int)
        if lineid in seen:
            raise InputError(f"duplicate lineid {lineid}", file=path, line=lineno, field="lineid")
        seen.add(lineid)
        aliases = obj.get("obj_aliases", [])
        if aliases is None:
            aliases = []
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise InputError(f"expected a list of strings, got {aliases!r}", file=path, line=lineno,
                             field="obj_aliases")
        facts.append(
            Fact(
                lineid=lineid,
                relation=relation,
                language=language,
                sub_label=_field(obj, "sub_label", path, lineno),
                obj_label=_field(obj, "obj_label", path, lineno),
                sub_uri=str(obj.get("sub_uri", "")),
                obj_uri=str(obj.get("obj_uri", "")),
                obj_aliases=tuple(a.strip() for a in aliases if a.strip()),
            )
        )
    return tuple(facts)


def available_languages(root: str | Path) -> list[str]:
    root = Path(root)
    return sorted(p.name for p in root.iterdir() if (p / "templates.jsonl").is_file()) if root.is_dir() else []


def load_facts(
    root: str | Path,
    languages: Sequence[str] | None = None,
    relations: Sequence[str] | None = None,
    *,
    max_facts_per_relation: int | None = None,
    seed: int = 0,
) -> FactSet:
    """Load an mLAMA-layout folder.

    ``languages``/``relations`` default to everything present.  A relation is kept
    if it has a template and a fact file in at least one chosen language.
    ``max_facts_per_relation`` subsamples line ids (the same ids in every
    language, chosen with ``seed``); candidate sets always use all facts.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError("fact folder does not exist", file=root)
    present = available_languages(root)
    langs = list(languages) if languages else present
    for lang in langs:
        if lang not in present:
            raise InputError(f"unknown language '{lang}'; available: {', '.join(present) or 'none'}", file=root,
                             field="language")
    templates: dict[tuple[str, str], Relation] = {}
    facts: dict[tuple[str, str], tuple[Fact, ...]] = {}
    candidate_sets: dict[tuple[str, str], tuple[str, ...]] = {}
    all_rels: set[str] = set()
    for lang in langs:
        tpl = read_templates(root / lang / "templates.jsonl", lang)
        files = {p.stem for p in (root / lang).glob("*.jsonl") if p.name != "templates.jsonl"}
        for rel in sorted(files - set(tpl)):
            if relations is None or rel in relations:
                raise InputError(f"relation file without a template in {lang}/templates.jsonl",
                                 file=root / lang / f"{rel}.jsonl", field="relation")
        all_rels |= files
        for rel in sorted(files if relations is None else set(relations) & files):
            templates[(lang, rel)] = tpl[rel]
            facts[(lang, rel)] = read_facts(root / lang / f"{rel}.jsonl", lang, rel)
            candidate_sets[(lang, rel)] = tuple(sorted({f.obj_label for f in facts[(lang, rel)]}))
    rels = sorted(all_rels) if relations is None else list(relations)
    for rel in rels:
        if rel not in all_rels:
            raise InputError(f"unknown relation '{rel}' in languages {', '.join(langs)}", file=root, field="relation")
    fs = FactSet(root, tuple(langs), tuple(rels), templates, facts, candidate_sets)
    if max_facts_per_relation is not None:
        keep: set[int] = set()
        for rel in rels:
            ids = sorted(set().union(*({f.lineid for f in fs.facts_of(lang, rel)} for lang in langs)))
            random.Random(f"{seed}-{rel}").shuffle(ids)
            keep |= set(ids[:max_facts_per_relation])
        fs = fs.restrict(keep)
    if sum(fs.n_facts(lang) for lang in langs) == 0:
        raise InputError("no facts selected (empty fact set)", file=root)
    return fs


# ---------------------------------------------------------------- prompt rendering
def render_masked(template: str, subject: str, n_masks: int, mask_token: str) -> str:
    """Masked-LM query: subject filled in, one mask token per object token."""
    if n_masks < 1:
        raise InputError("object tokenizes to nothing (0 mask tokens)", field="obj_label")
    return template.replace(SUBJECT, subject).replace(OBJECT, " ".join([mask_token] * n_masks))


def render_filled(template: str, subject: str, obj: str) -> str:
    """A full sentence with subject and object filled in (causal-LM candidate)."""
    return template.replace(SUBJECT, subject).replace(OBJECT, obj)


def render_prefix(template: str, subject: str) -> str:
    """The text before the object slot (causal-LM query prompt), stripped of trailing space."""
    return template.replace(SUBJECT, subject).split(OBJECT)[0].rstrip()


def render_query(template: str, subject: str, kind: str, mask_token: str | None = None) -> str:
    """The query text a model reads for a fact (language vectors, similarity).

    Masked LMs: the template with one mask in the object slot.  Causal LMs: the
    text before the object slot; when the template starts with the object (e.g.
    French ``[Y] est la capitale de [X] .``) that prefix is empty, and the whole
    template without the object is used instead.
    """
    if kind == "masked":
        return render_masked(template, subject, 1, mask_token or "[MASK]")
    prefix = render_prefix(template, subject)
    return prefix if prefix else " ".join(template.replace(SUBJECT, subject).replace(OBJECT, " ").split())
