"""Turn a fact set into probing queries once per run: each language's facts in order and their candidate pools.

Drawing the candidate pools (:func:`~lrp2_interp.probing.types.fact_pools`; entity distractors,
:func:`~lrp2_interp.probing.types.entity_pools`, above all) is the costly part of preparing a probe.
A :class:`QuerySet` is built from a fact set and a probe config, draws a language's pools the first
time they are asked for, and keeps them: every engine that probes those facts (``probe``,
``probe_scores``, the fast and reference paths, the sweep, the interventions' ``Scorer``) takes an
optional query set and builds one only when none is given, so a caller that runs several of them on
the same facts builds one and passes it down.

Restricting a fact set by keys (:meth:`FactSet.restrict_keys`, :meth:`FactSet.restrict`) never
changes a kept fact's pool -- candidate and entity sets stay, and a key is kept or dropped in every
language -- so :meth:`QuerySet.restricted` serves a restriction from the pools already drawn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lrp2_interp.facts import Fact, FactSet
from lrp2_interp.probing.types import FactKey, Pools, ProbeConfig, fact_pools

Queries = tuple[list[Fact], Pools]  # facts in probing order, their candidate pools


def pool_settings(config: ProbeConfig) -> tuple:
    """The settings of ``config`` that candidate pools depend on."""
    return (config.max_candidates, config.distractors, config.seed)


class QuerySet:
    """The facts of ``facts`` as queries under ``config``: per language, the ordered facts and their pools."""

    def __init__(self, facts: FactSet, config: ProbeConfig, *, parent: QuerySet | None = None) -> None:
        self.facts, self.config, self.parent = facts, config, parent
        self._queries: dict[str, Queries] = {}
        self._by_key: dict[str, dict[FactKey, Fact]] = {}

    @classmethod
    def use(cls, queries: QuerySet | None, facts: FactSet, config: ProbeConfig) -> QuerySet:
        """``queries`` serving ``facts`` (which it was built from, or a key restriction of it), else a new set."""
        if queries is None:
            return cls(facts, config)
        if pool_settings(queries.config) != pool_settings(config):
            raise ValueError(
                f"the query set's pools were drawn with (max_candidates, distractors, seed) = "
                f"{pool_settings(queries.config)}, not {pool_settings(config)}"
            )
        return queries.restricted(facts)

    def of(self, language: str) -> Queries:
        """Every fact of ``language`` (relation order, then file order) and its pool, drawn once."""
        if language not in self._queries:
            if self.parent is None:
                self._queries[language] = fact_pools(self.facts, language, self.config)
            else:
                order, pools = self.parent.of(language)
                keep = set(self.facts.keys(language))
                mine = [f for f in order if (f.relation, f.lineid) in keep]
                if mine != list(self.facts.iter_facts(language)):
                    raise ValueError(f"{language}: these facts are not a key restriction of the query set's facts")
                self._queries[language] = (mine, {(f.relation, f.lineid): pools[(f.relation, f.lineid)] for f in mine})
        return self._queries[language]

    def subset(self, language: str, keys: Sequence[FactKey]) -> Queries:
        """The facts of ``keys`` (in that order) and their pools: what the engines' ``subset=`` takes."""
        if language not in self._by_key:
            self._by_key[language] = {(f.relation, f.lineid): f for f in self.of(language)[0]}
        by_key, pools = self._by_key[language], self.of(language)[1]
        return [by_key[k] for k in keys], {k: pools[k] for k in keys}

    def restrict_keys(self, keys: Iterable[FactKey]) -> QuerySet:
        """The query set of ``facts.restrict_keys(keys)``, its pools taken from this one's."""
        return self.restricted(self.facts.restrict_keys(keys))

    def restricted(self, facts: FactSet) -> QuerySet:
        """The query set of ``facts``: this one's facts or a key restriction of them (pools never drawn again)."""
        if facts is self.facts:
            return self
        same = (facts.languages, facts.relations, facts.candidate_sets, facts.entity_sets) == (
            self.facts.languages,
            self.facts.relations,
            self.facts.candidate_sets,
            self.facts.entity_sets,
        )
        if not same:
            raise ValueError("the query set was built from other facts (languages, relations or candidates differ)")
        return QuerySet(facts, self.config, parent=self)
