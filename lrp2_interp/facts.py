"""mLAMA-layout fact sets: many files loaded as one set, parallel facts, splits and entity labels (queries: :mod:`lrp2_interp.prompts`).

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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from lrp2_interp.errors import InputError
from lrp2_interp.fact_files import (
    Fact,
    Relation,
    check_unique_lineids,
    read_facts,
    read_templates,
)


@dataclass(frozen=True)
class FactSet:
    """Facts and templates of some languages and relations, as loaded from ``root``."""

    root: Path
    languages: tuple[str, ...]
    relations: tuple[str, ...]
    templates: dict[tuple[str, str], Relation] = field(repr=False)
    facts: dict[tuple[str, str], tuple[Fact, ...]] = field(repr=False)
    candidate_sets: dict[tuple[str, str], tuple[str, ...]] = field(repr=False)
    #: (language, relation) -> object entity (``obj_uri``) -> its label there, over *all* loaded facts
    #: (like ``candidate_sets``, kept by :meth:`restrict`); None where a fact of it has no ``obj_uri``
    entity_sets: dict[tuple[str, str], dict[str, str] | None] = field(default_factory=dict, repr=False)

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

    def restrict(self, lineids: Iterable[int]) -> FactSet:
        """The same set keeping only the given line ids (candidate sets unchanged)."""
        keep = set(lineids)
        facts = {k: tuple(f for f in v if f.lineid in keep) for k, v in self.facts.items()}
        return replace(self, facts=facts)

    def restrict_keys(self, keys: Iterable[tuple[str, int]]) -> FactSet:
        """The same set keeping only the facts with the given ``(relation, lineid)`` keys."""
        keep = set(keys)
        facts = {k: tuple(f for f in v if (f.relation, f.lineid) in keep) for k, v in self.facts.items()}
        return replace(self, facts=facts)

    def select_languages(self, languages: Sequence[str]) -> FactSet:
        """The same set holding only ``languages`` (in that order)."""
        self.check_languages(languages)
        langs = tuple(languages)
        return replace(
            self,
            languages=langs,
            facts={k: v for k, v in self.facts.items() if k[0] in langs},
            candidate_sets={k: v for k, v in self.candidate_sets.items() if k[0] in langs},
            entity_sets={k: v for k, v in self.entity_sets.items() if k[0] in langs},
        )

    def keys(self, language: str) -> list[tuple[str, int]]:
        """``(relation, lineid)`` of every fact of ``language``, in relation then file order."""
        return [(f.relation, f.lineid) for f in self.iter_facts(language)]

    def entities(self, language: str, relation: str) -> dict[str, str]:
        """Object entity (``obj_uri``) -> label in ``language``, over every loaded fact of the relation.

        Raises :class:`InputError` when a fact of the relation has no ``obj_uri`` (entities cannot be matched
        across languages then).  One label per entity: the first in file order.
        """
        ents = self.entity_sets.get((language, relation))
        if ents is None:
            raise InputError(
                "facts without an obj_uri: distractors cannot be matched by entity across languages",
                file=self.root / language / f"{relation}.jsonl",
                field="obj_uri",
            )
        return ents

    def restrict_relations(self, relations: Sequence[str]) -> FactSet:
        """The same set keeping only ``relations``."""
        keep = tuple(r for r in self.relations if r in set(relations))
        facts = {k: v for k, v in self.facts.items() if k[1] in keep}
        return replace(self, relations=keep, facts=facts)

    def check_languages(self, languages: Iterable[str], field: str = "language") -> None:
        """Refuse, with one InputError naming the set's folder and ``field``, languages the set does not hold."""
        missing = [lang for lang in languages if lang not in self.languages]
        if missing:
            which = f"language '{missing[0]}' is" if len(missing) == 1 else f"languages {', '.join(missing)} are"
            raise InputError(f"{which} not in the fact set ({', '.join(self.languages)})", file=self.root, field=field)

    def parallel(self, languages: Sequence[str] | None = None) -> FactSet:
        """Keep only facts present (same ``lineid``) in every one of ``languages``."""
        langs = list(languages or self.languages)
        self.check_languages(langs)
        common = set.intersection(*(self.lineids(lang) for lang in langs))
        if not common and len(langs) > 1:
            sizes = ", ".join(f"{lang}: {self.n_facts(lang)}" for lang in langs)
            raise InputError(
                f"no fact (same lineid) is shared by all of {', '.join(langs)} in relations "
                f"{', '.join(self.relations)} (facts per language: {sizes})",
                file=self.root,
                field="lineid",
            )
        return self.restrict(common)

    def split(self, fraction: float, seed: int = 0) -> tuple[FactSet, FactSet]:
        """Split facts by line id into (first, rest) with ``fraction`` in the first part."""
        ids = sorted(set().union(*(self.lineids(lang) for lang in self.languages)))
        random.Random(seed).shuffle(ids)
        cut = round(fraction * len(ids))
        return self.restrict(ids[:cut]), self.restrict(ids[cut:])


def shipped_facts_root(*, check: bool = True) -> Path:
    """The fact set shipped with the package: the one place its location is resolved.

    In a wheel (``pip install .``) the facts are package data under
    ``lrp2_interp/data/facts``; in a source checkout (editable install, or the
    repository on ``PYTHONPATH``) they are the repository's ``data/facts``.
    """
    here = Path(__file__).resolve().parent
    for root in (here / "data" / "facts", here.parent / "data" / "facts"):
        if (root / "en" / "templates.jsonl").is_file():
            return root
    if not check:
        return here / "data" / "facts"
    raise InputError(
        "the shipped fact set is missing from this installation (reinstall lrp2-interp)", file=here / "data" / "facts"
    )


def facts_digest(facts: FactSet) -> str:
    """sha256 of everything a result depends on in ``facts``: templates, facts, aliases, candidate pools."""
    import hashlib

    h = hashlib.sha256()
    for key in sorted(facts.facts):
        if key[0] not in facts.languages or key[1] not in facts.relations:
            continue
        h.update(
            json.dumps(
                [
                    key,
                    facts.templates[key].template,
                    facts.candidate_sets.get(key, ()),
                    [[f.lineid, f.sub_label, f.obj_label, list(f.obj_aliases)] for f in facts.facts[key]],
                ],
                ensure_ascii=False,
            ).encode("utf-8")
        )
    return h.hexdigest()


def _entity_labels(facts: Sequence[Fact]) -> dict[str, str] | None:
    """obj_uri -> label (first in file order), or None when some fact has no obj_uri."""
    out: dict[str, str] = {}
    for f in facts:
        if not f.obj_uri:
            return None
        out.setdefault(f.obj_uri, f.obj_label)
    return out


def available_languages(root: str | Path) -> list[str]:
    root = Path(root)
    return sorted(p.name for p in root.iterdir() if (p / "templates.jsonl").is_file()) if root.is_dir() else []


def load_facts(
    root: str | Path | None = None,
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
    ``root=None``: the shipped facts (:func:`shipped_facts_root`).
    """
    root = shipped_facts_root() if root is None else Path(root)
    if not root.is_dir():
        raise InputError("fact folder does not exist", file=root)
    if max_facts_per_relation is not None and (
        isinstance(max_facts_per_relation, bool)
        or not isinstance(max_facts_per_relation, int)
        or max_facts_per_relation < 1
    ):
        raise InputError(
            f"must be a positive number of facts per relation, got {max_facts_per_relation!r}",
            file=root,
            field="max_facts",
        )
    for what, given in (("language", languages), ("relation", relations)):
        items = list(given or ())
        repeated = sorted({x for x in items if items.count(x) > 1})
        if repeated:
            raise InputError(f"{what} {', '.join(repeated)} given more than once", file=root, field=what)
    present = available_languages(root)
    if not present and (root / "templates.jsonl").is_file():
        raise InputError(
            "this is one language's folder (it holds templates.jsonl itself); --facts takes the folder above it, "
            "laid out as {root}/{lang}/templates.jsonl and {root}/{lang}/{relation}.jsonl",
            file=root,
        )
    langs = list(languages) if languages else present
    for lang in langs:
        if lang not in present:
            raise InputError(
                f"unknown language '{lang}'; available: {', '.join(present) or 'none'}", file=root, field="language"
            )
    templates: dict[tuple[str, str], Relation] = {}
    facts: dict[tuple[str, str], tuple[Fact, ...]] = {}
    candidate_sets: dict[tuple[str, str], tuple[str, ...]] = {}
    entity_sets: dict[tuple[str, str], dict[str, str] | None] = {}
    all_rels: set[str] = set()
    for lang in langs:
        tpl = read_templates(root / lang / "templates.jsonl", lang)
        files = {p.stem for p in (root / lang).glob("*.jsonl") if p.name != "templates.jsonl"}
        for rel in sorted(files - set(tpl)):
            if relations is None or rel in relations:
                raise InputError(
                    f"relation file without a template in {lang}/templates.jsonl",
                    file=root / lang / f"{rel}.jsonl",
                    field="relation",
                )
        all_rels |= files
        for rel in sorted(files if relations is None else set(relations) & files):
            templates[(lang, rel)] = tpl[rel]
            facts[(lang, rel)] = read_facts(root / lang / f"{rel}.jsonl", lang, rel)
            candidate_sets[(lang, rel)] = tuple(sorted({f.obj_label for f in facts[(lang, rel)]}))
            entity_sets[(lang, rel)] = _entity_labels(facts[(lang, rel)])
    check_unique_lineids(root, facts)
    rels = sorted(all_rels) if relations is None else list(relations)
    for rel in rels:
        if rel not in all_rels:
            raise InputError(f"unknown relation '{rel}' in languages {', '.join(langs)}", file=root, field="relation")
    fs = FactSet(root, tuple(langs), tuple(rels), templates, facts, candidate_sets, entity_sets)
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
