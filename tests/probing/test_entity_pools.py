"""Distractors by entity: the source and the target language rank the same entities (Trans over like)."""

from __future__ import annotations

import pytest

from lrp2_interp.errors import InputError
from lrp2_interp.facts import load_facts, shipped_facts_root
from lrp2_interp.probing.types import ProbeConfig, fact_pools


def _entities(facts, lang, pools):
    inv = {rel: {} for rel in facts.relations}
    for f in facts.iter_facts(lang):
        inv[f.relation].setdefault(f.obj_label, set()).add(f.obj_uri)
    return {k: frozenset().union(*(inv[k[0]][label] for label in pool)) for k, pool in pools.items()}


def test_entity_pools_rank_the_same_entities_in_both_languages():
    facts = load_facts(shipped_facts_root(), ["en", "fr"]).parallel()
    cfg = ProbeConfig(max_candidates=6, distractors="entity")
    _, en = fact_pools(facts, "en", cfg)
    _, fr = fact_pools(facts, "fr", cfg)
    ent_en, ent_fr = _entities(facts, "en", en), _entities(facts, "fr", fr)
    assert ent_en == ent_fr
    # by label (today's default) they differ for many facts
    lab = ProbeConfig(max_candidates=6)
    _, en_l = fact_pools(facts, "en", lab)
    _, fr_l = fact_pools(facts, "fr", lab)
    differ = sum(a != b for a, b in zip(_entities(facts, "en", en_l).values(), _entities(facts, "fr", fr_l).values()))
    assert differ > 0


def test_entity_pools_keep_the_gold_and_never_a_label_that_counts_as_correct():
    facts = load_facts(shipped_facts_root(), ["en", "fr"]).parallel()
    order, pools = fact_pools(facts, "fr", ProbeConfig(max_candidates=6, distractors="entity"))
    for f in order:
        pool = pools[(f.relation, f.lineid)]
        assert f.obj_label in pool and sum(f.is_correct(c) for c in pool) == 1
        assert len(pool) == len(set(pool)) <= 6


def test_entity_pools_need_obj_uri(fixture_facts):
    with pytest.raises(InputError, match="obj_uri"):
        fact_pools(fixture_facts, "fr", ProbeConfig(max_candidates=2, distractors="entity"))


def test_distractors_setting_is_validated():
    with pytest.raises(InputError, match="distractors"):
        ProbeConfig(distractors="Entity")  # type: ignore[arg-type]
