"""A query set draws each language's candidate pools once -- exactly fact_pools' -- and every engine takes it."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from lrp2_interp.facts import load_facts, shipped_facts_root
from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks
from lrp2_interp.lrp2.sweep import SweepConfig, run_sweep
from lrp2_interp.lrp2.vectors import compute_language_vectors
from lrp2_interp.models.loading import load_model
from lrp2_interp.probing.fast import fast_scores
from lrp2_interp.probing.probe import probe, probe_scores
from lrp2_interp.probing.query_set import QuerySet
from lrp2_interp.probing.reference_probe import reference_scores
from lrp2_interp.probing.types import ProbeConfig, fact_pools
from lrp2_interp.prompts import prompt_corpus

pytestmark = pytest.mark.usefixtures("single_thread")
ENTITY = ProbeConfig(max_candidates=5, distractors="entity")


@pytest.fixture(scope="module")
def facts():
    return load_facts(shipped_facts_root(), ["en", "fr", "es"], max_facts_per_relation=6)


@pytest.fixture(scope="module")
def lm(repo_model_dir):
    return load_model(str(repo_model_dir("gpt2", n_layers=3)))


@pytest.mark.parametrize("config", [ENTITY, ProbeConfig(max_candidates=4), ProbeConfig()], ids=str)
def test_a_query_set_gives_fact_pools_of_every_language(facts, config):
    queries = QuerySet(facts, config)
    for lang in facts.languages:
        assert queries.of(lang) == fact_pools(facts, lang, config)
        assert queries.of(lang) is queries.of(lang)  # drawn once, then kept


def test_pools_are_drawn_once_per_language_and_serve_subsets_and_restrictions(facts, pool_count):
    queries = QuerySet(facts, ENTITY)
    for lang in facts.languages:
        queries.of(lang)
    assert set(pool_count) == {(g, r) for g in facts.languages for r in facts.relations} and set(
        pool_count.values()
    ) == {1}
    keys = facts.keys("fr")[::3]
    order, pools = queries.subset("fr", keys[::-1])
    assert [(f.relation, f.lineid) for f in order] == keys[::-1] and set(pools) == set(keys)
    by_keys, by_ids = queries.restrict_keys(keys), queries.restricted(facts.restrict({k[1] for k in keys}))
    pool_count.clear()
    assert by_keys.of("fr") == fact_pools(facts.restrict_keys(keys), "fr", ENTITY)
    assert by_ids.of("es") == fact_pools(by_ids.facts, "es", ENTITY)
    drawn_again = sum(pool_count.values())
    by_keys.of("fr"), by_ids.of("es")
    assert sum(pool_count.values()) == drawn_again  # only the reference fact_pools calls drew


def test_a_query_set_refuses_other_facts_and_other_pool_settings(facts):
    queries = QuerySet(facts, ENTITY)
    assert QuerySet.use(queries, facts, dataclasses.replace(ENTITY, head_dtype="bfloat16", batch_size=3)) is queries
    with pytest.raises(ValueError, match="max_candidates"):
        QuerySet.use(queries, facts, dataclasses.replace(ENTITY, max_candidates=6))
    with pytest.raises(ValueError, match="other facts"):
        QuerySet.use(queries, facts.select_languages(["en", "fr"]), ENTITY)
    other = load_facts(shipped_facts_root(), ["en", "fr", "es"], max_facts_per_relation=7)
    with pytest.raises(ValueError, match="not a key restriction"):
        QuerySet.use(queries, dataclasses.replace(facts, facts=other.facts), ENTITY).of("fr")


def test_every_engine_takes_a_query_set_and_draws_no_pools_again(lm, facts, pool_count):
    pair = facts.select_languages(["en", "fr"]).parallel(["en", "fr"])
    queries = QuerySet(pair, ENTITY)
    queries.of("fr")
    pool_count.clear()
    ref = probe_scores(lm, pair, "fr", ENTITY)
    assert pool_count  # without a query set, the pools are drawn
    pool_count.clear()
    ref_cfg = dataclasses.replace(ENTITY, path="reference")
    assert probe_scores(lm, pair, "fr", ENTITY, queries=queries) == ref
    assert fast_scores(lm, pair, "fr", ENTITY, exact=True, queries=queries) == ref
    assert reference_scores(lm, pair, "fr", ref_cfg, queries=queries)[0] == ref[0]
    assert probe(lm, pair, "fr", ENTITY, queries=queries).table.equals(probe(lm, pair, "fr", ENTITY).table)
    assert sum(pool_count.values()) == len(pair.relations)  # the last probe's own query set only


def test_a_per_pair_sweep_draws_the_pools_once(lm, facts, pool_count):
    """Every pair is one probe; all of them rank the pools drawn once (regression: twice per probe)."""
    pair = facts.select_languages(["en", "fr"]).parallel(["en", "fr"])
    vec = compute_language_vectors(lm, {g: prompt_corpus(pair, g, lm) for g in ("en", "fr")}, progress=False)
    cfg = SweepConfig(language="fr", layers=(0, 1, 2), engine="per_pair", probe=ENTITY)
    pool_count.clear()
    res = run_sweep(lm, pair, vec, cfg, progress=False)
    assert set(pool_count) == {("fr", rel) for rel in pair.relations} and set(pool_count.values()) == {1}
    one = probe(lm, pair, "fr", ENTITY, fwd_hooks=lrp2_hooks(lm, vec, "fr", LRP2Config(0, 2))).table
    got = res.facts_table.query("condition == 'm0_n2'").reset_index(drop=True)
    pd.testing.assert_series_equal(got["rank"], one["rank"], check_names=False)
