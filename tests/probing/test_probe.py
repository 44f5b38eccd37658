"""Typed probing: hand-checkable rigged models, ties, candidate order, multi-token objects, caps, errors."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

import pandas as pd
import pytest
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.facts import Fact, FactSet, load_facts
from lrp2_interp.models.loading import Batch, LanguageModel
from lrp2_interp.probing.probe import (
    TABLE_COLUMNS,
    ProbeConfig,
    ProbeResult,
    candidate_pool,
    probe,
)
from lrp2_interp.prompts import fact_sentences, render_filled, render_masked

pytestmark = pytest.mark.usefixtures("single_thread")

QUIET = ProbeConfig()
#: rigged tests replace ``lm.logits``, which only the reference path calls
REF = ProbeConfig(path="reference")
CAUSAL = ["bloom_lm", "gpt2_lm", "qwen2_lm"]


@pytest.fixture(params=["bert_lm", *CAUSAL])
def any_lm(request) -> LanguageModel:
    return request.getfixturevalue(request.param)


@pytest.fixture(params=CAUSAL)
def causal_lm(request) -> LanguageModel:
    return request.getfixturevalue(request.param)


# ------------------------------------------------------------------ rigged logits
def rig(monkeypatch, lm: LanguageModel, facts: FactSet, language: str, answer: Callable[[Fact], str]) -> list:
    """Replace ``lm.logits`` by hand-made logits under which ``answer(fact)`` must win for every fact.

    Each row is recognised from its tokens.  Masked: +10 on the answer's i-th token at the i-th mask
    (rows with another number of masks get all-zero logits).  Causal: the answer's full sentence gets
    +20 on every next token (log-prob ~ 0); every other sentence all-zero logits (-log V per token).
    Returns the list of recorded batches.
    """
    lookup: dict[tuple[int, ...], tuple[Fact, object]] = {}
    bos = lm.tokenizer.bos_token_id
    for rel in facts.relations:
        tpl = facts.template(language, rel).template if facts.facts_of(language, rel) else None
        for fact in facts.facts_of(language, rel):
            if lm.kind == "masked":
                for k in range(1, 8):
                    text = render_masked(tpl, fact.sub_label, k, lm.mask_token)
                    key = tuple(lm.encode([text]).input_ids[0].tolist())
                    assert key not in lookup
                    lookup[key] = (fact, k)
            else:
                for cand in facts.candidates(language, rel):
                    key = tuple(
                        ([bos] if bos is not None else []) + lm.token_ids(render_filled(tpl, fact.sub_label, cand))
                    )
                    assert key not in lookup
                    lookup[key] = (fact, cand)
    seen: list[Batch] = []
    vocab = len(lm.tokenizer)

    def logits(batch: Batch, fwd_hooks=None) -> torch.Tensor:
        seen.append(batch)
        b, pos = batch.input_ids.shape
        out = torch.zeros(b, pos, vocab)
        for row in range(b):
            n = int(batch.attention_mask[row].sum())
            ids = batch.input_ids[row, :n].tolist()
            fact, what = lookup[tuple(ids)]
            want = answer(fact)
            if lm.kind == "masked":
                masks = [p for p, t in enumerate(ids) if t == lm.mask_token_id]
                toks = lm.token_ids(want)
                if len(toks) == what:
                    for p, t in zip(masks, toks):
                        out[row, p, t] = 10.0
            elif what == want:
                for p in range(n - 1):
                    out[row, p, ids[p + 1]] = 20.0
        return out

    monkeypatch.setattr(lm, "logits", logits)
    return seen


def _distinct_tokenizations(lm, facts, language):
    for rel in facts.relations:
        toks = [tuple(lm.token_ids(c)) for c in facts.candidates(language, rel)]
        assert len(set(toks)) == len(toks), f"two {rel} candidates tokenize alike: the rig would be ambiguous"


@pytest.mark.parametrize("language", ["en", "ru"])
def test_rigged_gold_wins_everywhere(monkeypatch, any_lm, fixture_facts, language):
    _distinct_tokenizations(any_lm, fixture_facts, language)
    rig(monkeypatch, any_lm, fixture_facts, language, lambda f: f.obj_label)
    res = probe(any_lm, fixture_facts, language, REF)
    t = res.table
    assert res.accuracy == 100.0
    assert len(t) == fixture_facts.n_facts(language)
    assert (t["rank"] == 1).all() and (t["prediction"] == t["gold"]).all()
    assert res.correct_ids() == fixture_facts.lineids(language)


def test_rigged_wrong_answer_is_predicted(monkeypatch, any_lm, fixture_facts):
    def wrong(f: Fact) -> str:
        return next(c for c in fixture_facts.candidates("en", f.relation) if c != f.obj_label)

    _distinct_tokenizations(any_lm, fixture_facts, "en")
    rig(monkeypatch, any_lm, fixture_facts, "en", wrong)
    res = probe(any_lm, fixture_facts, "en", REF)
    t = res.table.set_index(["relation", "lineid"])
    assert res.accuracy == 0.0 and res.correct_ids() == set()
    for f in fixture_facts.iter_facts("en"):
        row = t.loc[(f.relation, f.lineid)]
        assert row["prediction"] == wrong(f) and not row["correct"] and row["rank"] >= 2


def test_rigged_gold_wins_with_mean_decoder_score(monkeypatch, causal_lm, fixture_facts):
    rig(monkeypatch, causal_lm, fixture_facts, "fr", lambda f: f.obj_label)
    assert probe(causal_lm, fixture_facts, "fr", ProbeConfig(decoder_score="mean", path="reference")).accuracy == 100.0


def test_alias_counts_as_correct(monkeypatch, bert_lm, fixture_facts_root, tmp_path):
    """A prediction equal to an alias (which is also a candidate) is correct at rank 1."""
    import shutil

    root = tmp_path / "facts"
    shutil.copytree(fixture_facts_root, root)
    p = root / "en" / "P36.jsonl"
    p.write_text(
        p.read_text(encoding="utf-8").replace('"obj_aliases": ["Roma"]', '"obj_aliases": ["Madrid"]'), encoding="utf-8"
    )
    facts = load_facts(root, ["en"], ["P36"])
    rig(monkeypatch, bert_lm, facts, "en", lambda f: "Madrid")
    t = probe(bert_lm, facts, "en", REF).table.set_index("lineid")
    assert t.loc[104, "prediction"] == "Madrid" and t.loc[104, "correct"] and t.loc[104, "rank"] == 1
    assert t.loc[103, "correct"] and not t.loc[105, "correct"]
    assert t["correct"].sum() == 2


# ------------------------------------------------------------------ ties and candidate order
def _exact_ties(monkeypatch, lm: LanguageModel, facts: FactSet, language: str) -> None:
    """Make every candidate score exactly the same.

    Masked: each candidate label becomes one distinct token and the logits are all zero, so every
    score is the same -log V.  Causal: every next token of every row gets logit 1e4, so its
    log-probability is exactly 0.0 and every sentence scores 0.0 (sum or mean).
    """
    vocab = len(lm.tokenizer)
    if lm.kind == "masked":
        labels = sorted({c for rel in facts.relations for c in facts.candidates(language, rel)})
        single = {c: [10 + i] for i, c in enumerate(labels)}
        real = lm.token_ids
        monkeypatch.setattr(lm, "token_ids", lambda text: single.get(text) or real(text))
        monkeypatch.setattr(lm, "logits", lambda batch, fwd_hooks=None: torch.zeros(*batch.input_ids.shape, vocab))
        return

    def logits(batch: Batch, fwd_hooks=None) -> torch.Tensor:
        out = torch.zeros(*batch.input_ids.shape, vocab)
        out[:, :-1].scatter_(2, batch.input_ids[:, 1:, None], 1e4)
        return out

    monkeypatch.setattr(lm, "logits", logits)


@pytest.mark.parametrize("decoder_score", ["sum", "mean"])
def test_ties_break_alphabetically(monkeypatch, any_lm, fixture_facts, decoder_score):
    """With every candidate tied, the prediction is the first label and the gold's rank its sorted index."""
    _exact_ties(monkeypatch, any_lm, fixture_facts, "fr")
    t = probe(any_lm, fixture_facts, "fr", ProbeConfig(decoder_score=decoder_score, path="reference")).table
    assert len(t) == fixture_facts.n_facts("fr")
    for _, row in t.iterrows():
        cands = list(fixture_facts.candidates("fr", row["relation"]))
        assert row["prediction"] == min(cands)
        assert row["rank"] == sorted(cands).index(row["gold"]) + 1
    # reversing the candidate order changes nothing
    t2 = probe(
        any_lm,
        _reorder(fixture_facts, lambda v: tuple(reversed(v))),
        "fr",
        ProbeConfig(decoder_score=decoder_score, path="reference"),
    ).table
    pd.testing.assert_frame_equal(t, t2)


def _reorder(facts: FactSet, how: Callable[[tuple], tuple]) -> FactSet:
    return dataclasses.replace(facts, candidate_sets={k: how(v) for k, v in facts.candidate_sets.items()})


def test_ranking_is_invariant_to_candidate_order(any_lm, fixture_facts):
    base = probe(any_lm, fixture_facts, "en", QUIET).table
    rng = random.Random(5)
    for how in (lambda v: tuple(reversed(v)), lambda v: tuple(rng.sample(v, len(v)))):
        other = probe(any_lm, _reorder(fixture_facts, how), "en", QUIET).table
        pd.testing.assert_frame_equal(base, other)


def test_batch_size_does_not_change_results(any_lm, fixture_facts):
    a = probe(any_lm, fixture_facts, "ru", ProbeConfig(batch_size=1)).table
    b = probe(any_lm, fixture_facts, "ru", ProbeConfig(batch_size=64)).table
    pd.testing.assert_frame_equal(a, b)


# ------------------------------------------------------------------ the table itself
def test_table_is_consistent(any_lm, fixture_facts):
    res = probe(any_lm, fixture_facts, "fr", QUIET)
    t = res.table
    assert isinstance(res, ProbeResult) and list(t.columns) == TABLE_COLUMNS
    assert res.language == "fr" and res.model_name == any_lm.name
    assert len(t) == fixture_facts.n_facts("fr")
    assert (t["language"] == "fr").all()
    assert t["correct"].tolist() == (t["rank"] == 1).tolist()  # no aliases among fr candidates
    for _, row in t.iterrows():
        cands = fixture_facts.candidates("fr", row["relation"])
        assert row["n_candidates"] == len(cands) and row["prediction"] in cands
        assert 1 <= row["rank"] <= len(cands)
    assert res.accuracy == pytest.approx(100.0 * t["correct"].mean())


def test_scores_of_real_model_follow_logits(bert_lm, fixture_facts):
    """The masked score of a single-token candidate is its log-probability at the mask: check rank 1."""
    facts = fixture_facts.restrict_relations(["P37"])
    t = probe(bert_lm, facts, "en", QUIET).table.set_index("lineid")
    for f in facts.facts_of("en", "P37"):
        cands = facts.candidates("en", "P37")
        text_by_k = {}
        best = None
        for c in cands:
            k = len(bert_lm.token_ids(c))
            if k not in text_by_k:
                batch = bert_lm.encode(
                    [render_masked(facts.template("en", "P37").template, f.sub_label, k, bert_lm.mask_token)]
                )
                with torch.no_grad():
                    lp = torch.log_softmax(bert_lm.logits(batch)[0], -1)
                text_by_k[k] = (batch.input_ids[0] == bert_lm.mask_token_id).nonzero().flatten(), lp
            pos, lp = text_by_k[k]
            score = float(lp[pos, bert_lm.token_ids(c)].mean())
            if best is None or score > best[0] + 1e-6 or (abs(score - best[0]) <= 1e-6 and c < best[1]):
                best = (score, c)
        assert t.loc[f.lineid, "prediction"] == best[1]


def test_fwd_hooks_reach_every_forward_pass(any_lm, fixture_facts):
    calls = []
    layer = any_lm.resid_post(any_lm.n_layers - 1)
    res = probe(
        any_lm,
        fixture_facts,
        "en",
        ProbeConfig(batch_size=4),
        fwd_hooks=[(layer, lambda x, hook: calls.append(x.shape[0]))],
    )
    assert calls and max(calls) <= 4
    if any_lm.kind == "masked":
        assert sum(calls) >= fixture_facts.n_facts("en")
    else:
        assert sum(calls) == sum(
            len(fixture_facts.candidates("en", f.relation)) for f in fixture_facts.iter_facts("en")
        )
    assert all(h.is_permanent for h in any_lm.bridge.hook_dict[layer].fwd_hooks), "hook left behind"
    # a hook that changes the residual stream changes the scores
    torch.manual_seed(0)
    noise = torch.randn(any_lm.d_model) * 50
    shifted = probe(any_lm, fixture_facts, "en", QUIET, fwd_hooks=[(layer, lambda x, hook: x + noise)])
    assert not shifted.table["rank"].equals(res.table["rank"]) or not shifted.table["prediction"].equals(
        res.table["prediction"]
    )


# ------------------------------------------------------------------ multi-token objects
def test_one_mask_per_object_token(monkeypatch, bert_lm, fixture_facts):
    seen: list[Batch] = []
    real = bert_lm.logits

    def spy(batch, fwd_hooks=None):
        seen.append(batch)
        return real(batch, fwd_hooks)

    monkeypatch.setattr(bert_lm, "logits", spy)
    probe(bert_lm, fixture_facts, "en", REF)
    n_masks = [int((b.input_ids[i] == bert_lm.mask_token_id).sum()) for b in seen for i in range(len(b.input_ids))]
    expected = sorted(
        len(bert_lm.token_ids(c))
        for f in fixture_facts.iter_facts("en")
        for c in {len(bert_lm.token_ids(x)): x for x in fixture_facts.candidates("en", f.relation)}.values()
    )
    assert sorted(n_masks) == expected
    assert max(n_masks) >= 2, "the fixture must have multi-token objects"


def test_causal_sentences_start_with_bos_and_hold_the_candidate(monkeypatch, bloom_lm, fixture_facts):
    rows: list[list[int]] = []
    real = bloom_lm.pad_ids

    def spy(r):
        rows.extend(list(x) for x in r)
        return real(r)

    monkeypatch.setattr(bloom_lm, "pad_ids", spy)
    probe(bloom_lm, fixture_facts, "en", REF)
    bos = bloom_lm.tokenizer.bos_token_id
    assert rows and all(r[0] == bos for r in rows)
    texts = {bloom_lm.tokenizer.decode(r[1:]) for r in rows}
    f = fixture_facts.facts_of("en", "P36")[5]
    assert render_filled(fixture_facts.template("en", "P36").template, f.sub_label, "Buenos Aires") in texts


# ------------------------------------------------------------------ max_candidates
def testcandidate_pool_cap_keeps_gold_and_is_deterministic(fixture_facts):
    cands = fixture_facts.candidates("en", "P36")
    cfg = ProbeConfig(max_candidates=3, seed=7)
    pools = {}
    for f in fixture_facts.facts_of("en", "P36"):
        pool = candidate_pool(f, cands, cfg)
        assert len(pool) == 3 and f.obj_label in pool and set(pool) <= set(cands)
        assert pool == sorted(pool) == candidate_pool(f, cands, cfg)
        pools[f.lineid] = pool
    # the seed matters
    others = {
        f.lineid: candidate_pool(f, cands, ProbeConfig(max_candidates=3, seed=8))
        for f in fixture_facts.facts_of("en", "P36")
    }
    assert others != pools
    assert candidate_pool(fixture_facts.facts_of("en", "P36")[0], cands, ProbeConfig(max_candidates=50)) == list(cands)
    assert candidate_pool(fixture_facts.facts_of("en", "P36")[0], cands, ProbeConfig(max_candidates=None)) == list(
        cands
    )


@pytest.mark.parametrize("lm_name", ["bert_lm", "gpt2_lm"])
def test_max_candidates_in_probe(request, fixture_facts, lm_name):
    lm = request.getfixturevalue(lm_name)
    cfg = ProbeConfig(max_candidates=3, seed=1)
    a = probe(lm, fixture_facts, "en", cfg).table
    b = probe(lm, fixture_facts, "en", cfg).table
    pd.testing.assert_frame_equal(a, b)
    assert (a["n_candidates"] == 3).all() and (a["rank"] <= 3).all()


def test_capped_pool_is_invariant_to_candidate_order(bert_lm, fixture_facts):
    cfg = ProbeConfig(max_candidates=3, seed=1)
    base = probe(bert_lm, fixture_facts, "en", cfg).table
    other = probe(bert_lm, _reorder(fixture_facts, lambda v: tuple(reversed(v))), "en", cfg).table
    pd.testing.assert_frame_equal(base, other)


def test_max_candidates_zero_is_an_input_error(bert_lm, fixture_facts):
    with pytest.raises(InputError) as err:
        probe(bert_lm, fixture_facts, "en", ProbeConfig(max_candidates=0))
    assert err.value.field == "max_candidates"


# ------------------------------------------------------------------ errors
def _facts_with_label(tmp_path, fixture_facts_root, label: str) -> FactSet:
    import shutil

    root = tmp_path / "facts"
    shutil.copytree(fixture_facts_root, root)
    p = root / "fr" / "P37.jsonl"
    p.write_text(
        p.read_text(encoding="utf-8").replace('"obj_label": "russe"', f'"obj_label": "{label}"'), encoding="utf-8"
    )
    return load_facts(root)


def test_label_that_tokenizes_to_nothing(bert_lm, fixture_facts_root, tmp_path):
    facts = _facts_with_label(tmp_path, fixture_facts_root, "\\u200b\\u00ad")  # zero-width space, soft hyphen
    label = facts.facts_of("fr", "P37")[-1].obj_label
    assert label.strip() and bert_lm.token_ids(label) == []
    with pytest.raises(InputError) as err:
        probe(bert_lm, facts, "fr", QUIET)
    assert err.value.file == str(facts.root / "fr" / "P37.jsonl") and err.value.field == "obj_label"
    assert f"{facts.root / 'fr' / 'P37.jsonl'}" in str(err.value) and "field 'obj_label'" in str(err.value)
    probe(bert_lm, facts, "en", QUIET)  # other languages are unaffected


def test_label_that_tokenizes_to_nothing_monkeypatched(monkeypatch, bert_lm, fixture_facts):
    real = bert_lm.token_ids
    monkeypatch.setattr(bert_lm, "token_ids", lambda text: [] if text == "Asia" else real(text))
    with pytest.raises(InputError) as err:
        probe(bert_lm, fixture_facts, "en", QUIET)
    assert err.value.file == str(fixture_facts.root / "en" / "P30.jsonl") and err.value.field == "obj_label"
    assert "'Asia'" in str(err.value)


def test_probing_causal_model_as_masked(bloom_lm, fixture_facts):
    as_masked = dataclasses.replace(bloom_lm, kind="masked")
    with pytest.raises(InputError) as err:
        probe(as_masked, fixture_facts, "en", QUIET)
    assert err.value.field == "mask_token"


def test_unknown_or_empty_language(bert_lm, fixture_facts):
    with pytest.raises(InputError) as err:
        probe(bert_lm, fixture_facts, "de", QUIET)
    assert err.value.field == "language" and err.value.file == str(fixture_facts.root)
    empty = fixture_facts.restrict([])
    with pytest.raises(InputError) as err:
        probe(bert_lm, empty, "en", QUIET)
    assert "empty fact set" in str(err.value)


# ------------------------------------------------------------------ shared data
@pytest.mark.shared_data
def test_probe_shared_data(shared_facts, tmp_path):
    from lrp2_interp.models.builders import RandomModelConfig, build_random_model
    from lrp2_interp.models.loading import load_model

    langs, rels = ["en", "fr"], ["P36", "P37"]
    facts = load_facts(shared_facts, langs, rels, max_facts_per_relation=10, seed=0)
    full = load_facts(shared_facts, langs, rels)
    corpus = fact_sentences(full, langs)
    lines = []
    for family, cfg in (
        ("bert", ProbeConfig()),
        ("bloom", ProbeConfig(max_candidates=20)),
    ):
        d = build_random_model(RandomModelConfig(family=family, n_layers=2), corpus, tmp_path / family, 2000)
        lm = load_model(d)
        for lang in langs:
            res = probe(lm, facts, lang, cfg)
            assert len(res.table) == 20 and set(res.table["relation"]) == set(rels)
            assert res.table["rank"].between(1, res.table["n_candidates"]).all()
            by_rel = res.table.groupby("relation")["correct"].mean() * 100
            lines.append(
                f"{family:5s} {lang}: P@1 all={res.accuracy:5.1f}  "
                + "  ".join(
                    f"{r}={v:5.1f} (n_cand={int(res.table.loc[res.table.relation == r, 'n_candidates'].iloc[0])})"
                    for r, v in by_rel.items()
                )
            )
    print("\nshared-data P@1 of tiny random models (10 facts per relation):\n" + "\n".join(lines))
