"""Held-out selection: split, successive halving, test-only conditions, controls, work counted."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lrp2_interp.facts import load_facts, shipped_facts_root
from lrp2_interp.interventions.language_projection import LRP2Intervention
from lrp2_interp.interventions.scoring import Scorer
from lrp2_interp.interventions.selection import (
    BASELINE,
    CHOSEN,
    SOURCE,
    SelectionConfig,
    select_and_score,
    split_keys,
)
from lrp2_interp.interventions.summary import headline, summary_row
from lrp2_interp.models.loading import load_model
from lrp2_interp.probing.probe import probe
from lrp2_interp.probing.types import ProbeConfig


@pytest.fixture(scope="module")
def lm(repo_model_dir):
    return load_model(str(repo_model_dir("gpt2", n_layers=4)))


@pytest.fixture(scope="module")
def facts():
    return load_facts(shipped_facts_root(), ["en", "fr", "es"], max_facts_per_relation=8)


def test_split_is_by_key_seeded_disjoint_and_capped(facts):
    keys = facts.keys("fr")
    cfg = SelectionConfig(max_dev=10, max_test=12, seed=3)
    dev, test = split_keys(keys, cfg)
    assert len(dev) == 10 and len(test) == 12 and not set(dev) & set(test)
    assert split_keys(list(reversed(keys)), cfg) == (dev, test)  # independent of input order
    full_dev, _ = split_keys(keys, SelectionConfig(max_dev=None, max_test=None, seed=3))
    assert dev == full_dev[:10]  # a cap keeps a prefix: membership never moves between dev and test
    assert split_keys(keys, SelectionConfig(max_dev=10, max_test=12, seed=4)) != (dev, test)


def test_halving_probes_test_facts_only_at_baseline_choice_and_controls(lm, facts):
    inter = LRP2Intervention.for_model(lm, "fr", layers=(-1, 0, 1, 2, 3), wrong_language="es")
    cfg = SelectionConfig(max_dev=20, max_test=16, first_rung=4, eta=3, n_controls=3)
    res = select_and_score(lm, facts, inter, cfg)
    t = res.facts_table
    test = t[t["split"] == "test"]
    assert set(test["condition"]) == {
        BASELINE,
        CHOSEN,
        SOURCE,
        "matched control 0",
        "matched control 1",
        "matched control 2",
        "wrong language (es)",
    }
    assert not set(zip(test["relation"], test["lineid"])) & set(
        zip(t.loc[t["split"] == "dev", "relation"], t.loc[t["split"] == "dev", "lineid"])
    )
    # halving: 10 pairs on 4 facts, then 4 on 12, then 2 on 20 (all dev facts)
    rungs = res.search.groupby("rung").agg(n=("n_dev", "first"), k=("setting", "size"))
    assert rungs["n"].tolist() == [4, 12, 20] and rungs["k"].tolist() == [10, 4, 2]
    assert res.chosen_label == res.search[res.search["rung"] == 2].iloc[0]["setting"]
    # work: 10x4 + 4x8 + 2x8 dev + baseline 20 + test 16 x (1 + 1 + 3 + 1) + source 16
    assert res.work["fact_conditions"] == 40 + 32 + 16 + 20 + 16 * 6 + 16
    assert res.work["full_grid"] == 11 * 36 + 16
    row = summary_row(res, n_boot=50)
    assert row["n_test"] == 16 and row["chosen"] == res.chosen_label
    assert row["gain"].low <= row["gain"].value <= row["gain"].high
    assert len(headline(__import__("pandas").DataFrame([row]))) == 1


def test_scores_equal_probing_each_condition_separately(lm, facts):
    """The shared engine (baseline, pair, controls at once) gives probe()'s rows for each condition."""
    inter = LRP2Intervention.for_model(lm, "fr", layers=(0, 2), wrong_language="es").fit(lm, facts)
    cfg = ProbeConfig(max_candidates=5, distractors="entity")
    pair = facts.select_languages(["en", "fr"]).parallel(["en", "fr"])
    keys = pair.keys("fr")[:12]
    conds = {"b": [], "p": inter.hooks((0, 2)), "c": inter.control((0, 2), 1), "eq": inter.control((2, 2), 0)}
    rows = Scorer(lm, pair, cfg).score("fr", conds, keys)
    sub = pair.restrict_keys(keys)
    for name, hooks in conds.items():
        ref = probe(lm, sub, "fr", ProbeConfig(max_candidates=5, distractors="entity", path="reference"), hooks or None)
        got = rows[rows["condition"] == name]
        assert got["prediction"].tolist() == ref.table["prediction"].tolist(), name
        assert got["rank"].tolist() == ref.table["rank"].tolist(), name


def test_scorer_scores_each_fact_condition_once(lm, facts):
    pair = facts.select_languages(["en", "fr"]).parallel(["en", "fr"])
    scorer = Scorer(lm, pair, ProbeConfig(max_candidates=4, distractors="entity"))
    keys = pair.keys("fr")
    scorer.score("fr", {"b": []}, keys[:5])
    scorer.score("fr", {"b": []}, keys[:8])
    assert scorer.work == 8


def test_stored_units_are_scoped_and_split_by_condition_groups(lm, facts, tmp_path, monkeypatch):
    """Two interventions' "chosen" rows in one store never stand in for each other (regression: the unit key
    held only condition names and facts), and many conditions are stored as several smaller units."""
    from lrp2_interp.interventions import scoring
    from lrp2_interp.store import ShardStore

    inter = LRP2Intervention.for_model(lm, "fr", layers=(0, 2), wrong_language="es").fit(lm, facts)
    cfg = ProbeConfig(max_candidates=5, distractors="entity")
    pair = facts.select_languages(["en", "fr"]).parallel(["en", "fr"])
    keys = pair.keys("fr")[:12]
    big = [(name, dataclasses.replace(fn, delta=fn.delta * 40.0)) for name, fn in inter.hooks((0, 2))]
    alone = Scorer(lm, pair, cfg).score("fr", {"chosen": big}, keys)
    assert alone["rank"].tolist() != Scorer(lm, pair, cfg).score("fr", {"chosen": []}, keys)["rank"].tolist()
    store = ShardStore(tmp_path)
    Scorer(lm, pair, cfg, store=store, scope="a").score("fr", {"chosen": []}, keys)
    got = Scorer(lm, pair, cfg, store=store, scope="b").score("fr", {"chosen": big}, keys)
    assert got["rank"].tolist() == alone["rank"].tolist()

    monkeypatch.setattr(scoring, "UNIT_CONDITIONS", 2)
    ticks: list[int] = []
    many = {f"c{k}": inter.control((0, 2), k) for k in range(5)}
    rows = Scorer(lm, pair, cfg, store=ShardStore(tmp_path / "m"), tick=ticks.append).score("fr", many, keys[:4])
    assert ticks == [8, 8, 4] and len(rows) == 20
    assert rows.equals(Scorer(lm, pair, cfg).score("fr", many, keys[:4]))


def test_stored_source_rows_are_per_language_pair(lm, facts, tmp_path):
    """English rows scored in the (en, fr) run are not read back in the (en, es) run (regression: the unit
    key named neither language pair, while entity distractors -- hence English's pools -- depend on the pair)."""
    from lrp2_interp.store import ShardStore

    cfg = ProbeConfig(max_candidates=4, distractors="entity")
    store = ShardStore(tmp_path)
    keys = facts.select_languages(["en", "fr", "es"]).parallel(["en", "fr", "es"]).keys("en")[:6]
    for other in ("fr", "es"):
        pair = facts.select_languages(["en", other]).parallel(["en", other])
        Scorer(lm, pair, cfg, store=store, scope="lrp2").score("en", {"source baseline": []}, keys)
    assert len(store.keys()) == 2


def test_oracle_chooses_on_test_facts_too(lm, facts):
    inter = LRP2Intervention.for_model(lm, "fr", layers=(0, 1, 2))
    res = select_and_score(lm, facts, inter, SelectionConfig(max_dev=6, max_test=6, search="oracle", n_controls=1))
    assert res.search["n_dev"].max() == 12  # every setting on dev + test facts


def test_vectors_are_fitted_on_dev_facts_only(lm, facts, monkeypatch):
    seen = {}
    inter = LRP2Intervention.for_model(lm, "fr", layers=(0, 1))
    real_fit = LRP2Intervention.fit

    def spy(self, lm_, f):
        seen["keys"] = set(f.keys("fr"))
        return real_fit(self, lm_, f)

    monkeypatch.setattr(LRP2Intervention, "fit", spy)
    cfg = SelectionConfig(max_dev=6, max_test=6, n_controls=0)
    res = select_and_score(lm, facts, inter, cfg)
    test_keys = set(zip(*[res.facts_table.query("split == 'test'")[c] for c in ("relation", "lineid")]))
    assert seen["keys"] and not seen["keys"] & test_keys
    assert torch.is_tensor(res.facts_table["correct"].iloc[0]) is False


@pytest.mark.parametrize("method", ["lrp2", "alignment"])
def test_a_heldout_run_draws_each_languages_pools_once(lm, facts, pool_count, method):
    """Shift conditions (LRP2) and probed ones (alignment: hooks the shift engine cannot take) alike
    (regression: each probed unit drew its facts' pools again: 4 times French's, for 1 alignment run)."""
    from lrp2_interp.methods.registry import MethodOptions, build_interventions

    (inter,) = build_interventions(lm, "fr", [method], MethodOptions(lrp2_layers=(0, 2), sigmas=(0.5,)))
    select_and_score(lm, facts, inter, SelectionConfig(max_dev=6, max_test=6, first_rung=3, n_controls=1))
    assert set(pool_count) == {(lang, rel) for lang in ("en", "fr") for rel in facts.relations}
    assert set(pool_count.values()) == {1}
