"""Every query a model reads, pinned: rendered text, token ids with and without BOS, targets, gold ids."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from lrp2_interp.errors import InputError
from lrp2_interp.facts import Fact
from lrp2_interp.prompts import (
    attribution_queries,
    candidate_rows,
    causal_ids,
    fact_sentences,
    gold_queries,
    gold_query,
    masked_ids,
    parallel_keys,
    parallel_prompts,
    prompt_corpus,
    query_text,
    render_filled,
    render_masked,
    render_prefix,
    render_query,
    start_ids,
    starts_with_object,
    target_positions,
    translation_prompts,
    with_bos,
)

EN = "The capital of [X] is [Y] ."
Y_FIRST = "[Y] est la capitale de [X] ."


def _fact(obj: str) -> Fact:
    return Fact(1, "P36", "en", "France", obj)


def _without_bos(lm, *, eos: bool = True):
    """A copy of ``lm`` whose tokenizer has no BOS token (the fixture tokenizers all have one), optionally no EOS."""
    tok = copy.deepcopy(lm.tokenizer)
    tok.bos_token = None
    if not eos:
        tok.eos_token = None
    assert tok.bos_token_id is None
    return dataclasses.replace(lm, tokenizer=tok)


# ------------------------------------------------------------------ rendering
def test_render_masked_one_mask_per_token():
    tpl = "The capital of [X] is [Y] ."
    assert render_masked(tpl, "France", 1, "[MASK]") == "The capital of France is [MASK] ."
    assert render_masked(tpl, "Argentina", 3, "<mask>") == "The capital of Argentina is <mask> <mask> <mask> ."
    with pytest.raises(InputError) as err:
        render_masked(tpl, "France", 0, "[MASK]")
    assert err.value.field == "obj_label"


def test_render_filled_prefix_and_query():
    tpl = "The capital of [X] is [Y] ."
    assert render_filled(tpl, "Italy", "Rome") == "The capital of Italy is Rome ."
    assert render_prefix(tpl, "Italy") == "The capital of Italy is"
    assert render_query(tpl, "Italy", "causal") == "The capital of Italy is"
    assert render_query(tpl, "Italy", "masked", "[MASK]") == "The capital of Italy is [MASK] ."
    # object first: the causal query falls back to the template without the object
    assert render_query("[Y] est la capitale de [X] .", "France", "causal") == "est la capitale de France ."


def test_masked_queries_have_one_mask_per_object_token(fixture_facts, bert_lm):
    lengths = set()
    for lang in fixture_facts.languages:
        for f in fixture_facts.iter_facts(lang):
            n = len(bert_lm.token_ids(f.obj_label))
            lengths.add(n)
            text = render_masked(fixture_facts.template(lang, f.relation).template, f.sub_label, n, bert_lm.mask_token)
            ids = bert_lm.encode([text]).input_ids[0].tolist()
            pos = [i for i, t in enumerate(ids) if t == bert_lm.mask_token_id]
            assert len(pos) == n and pos == list(range(pos[0], pos[0] + n))  # contiguous
    assert len(lengths) > 1, "the fixture must contain objects of several token lengths"


def test_object_first_template():
    assert starts_with_object(Y_FIRST) and starts_with_object("  [Y] x [X]") and not starts_with_object(EN)
    assert render_prefix(Y_FIRST, "France") == ""


# ------------------------------------------------------------------ masked LM ids (pinned)
def test_masked_gold_queries_pinned(bert_lm):
    lm = bert_lm
    assert (lm.mask_token_id, lm.tokenizer.cls_token_id, lm.tokenizer.sep_token_id) == (4, 2, 3)
    q = gold_query(lm, EN, _fact("Paris"), "all")
    assert (q.input_ids, q.targets, q.gold) == ((2, 195, 199, 196, 214, 193, 4, 6, 3), (6,), (232,))
    q = gold_query(lm, EN, _fact("Buenos Aires"), "all")  # two object tokens: two masks, both targets
    assert (q.input_ids, q.targets, q.gold) == ((2, 195, 199, 196, 214, 193, 4, 4, 6, 3), (6, 7), (220, 215))
    first = gold_query(lm, EN, _fact("Buenos Aires"))
    assert (first.input_ids, first.targets, first.gold) == (q.input_ids, (6,), (220,))
    q = gold_query(lm, Y_FIRST, _fact("Buenos Aires"), "all")
    assert (q.input_ids, q.targets, q.gold) == ((2, 4, 4, 194, 36, 120, 200, 198, 214, 6, 3), (1, 2), (220, 215))
    # a masked LM's query carries [CLS] ... [SEP], never the tokenizer's BOS id
    two_masks = (2, 195, 199, 196, 214, 193, 4, 4, 6, 3)
    assert tuple(masked_ids(lm, render_masked(EN, "France", 2, lm.mask_token))) == two_masks
    assert lm.tokenizer.bos_token_id not in q.input_ids[:1]
    assert query_text(lm, Y_FIRST, "France") == "[MASK] est la capitale de France ."


def test_masked_ids_are_what_encode_gives(bert_lm, fixture_facts):
    for text in prompt_corpus(fixture_facts, "fr", bert_lm):
        assert masked_ids(bert_lm, text) == bert_lm.encode([text]).input_ids[0].tolist()


# ------------------------------------------------------------------ causal LM ids (pinned)
@pytest.mark.parametrize("family", ["bloom_lm", "qwen2_lm"])
def test_causal_ids_pinned_with_bos(request, family):
    lm = request.getfixturevalue(family)
    assert lm.tokenizer.bos_token_id == 2
    assert candidate_rows(lm, EN, "France", ["Paris", "Buenos Aires"]) == [
        [2, 292, 294, 267, 413, 277, 548, 261],
        [2, 292, 294, 267, 413, 277, 543, 538, 261],
    ]
    q = gold_query(lm, EN, _fact("Buenos Aires"), "all")  # prefix + object tokens but the last
    assert (q.input_ids, q.targets, q.gold) == ((2, 292, 294, 267, 413, 277, 543), (5, 6), (543, 538))
    q = gold_query(lm, EN, _fact("Paris"))
    assert (q.input_ids, q.targets, q.gold) == ((2, 292, 294, 267, 413, 277), (5,), (548,))
    # object first: the prefix is empty, BOS predicts the first object token
    q = gold_query(lm, Y_FIRST, _fact("Buenos Aires"), "all")
    assert (q.input_ids, q.targets, q.gold) == ((2, 37, 468, 458), (0, 1, 2, 3), (37, 468, 458, 538))
    assert query_text(lm, Y_FIRST, "France") == "est la capitale de France ."
    assert causal_ids(lm, query_text(lm, Y_FIRST, "France")) == [2, 397, 87, 271, 68, 339, 306, 413, 261]
    # the batch encoder prepends the same BOS
    encoded = lm.encode([render_filled(EN, "France", "Paris")]).input_ids[0].tolist()
    assert encoded == [2, 292, 294, 267, 413, 277, 548, 261]


def test_causal_ids_pinned_without_bos(bloom_lm):
    """No BOS (Qwen2/2.5): EOS is the start token, so the first real token is predicted and scored."""
    lm = _without_bos(bloom_lm)
    eos = lm.tokenizer.eos_token_id
    assert eos == 3 and start_ids(lm) == [3] and start_ids(bloom_lm) == [2]
    assert with_bos(lm, [5, 6]) == [3, 5, 6] and with_bos(bloom_lm, [5, 6]) == [2, 5, 6]
    assert candidate_rows(lm, EN, "France", ["Paris", "Buenos Aires"]) == [
        [3, 292, 294, 267, 413, 277, 548, 261],
        [3, 292, 294, 267, 413, 277, 543, 538, 261],
    ]
    q = gold_query(lm, EN, _fact("Buenos Aires"), "all")
    assert (q.input_ids, q.targets, q.gold) == ((3, 292, 294, 267, 413, 277, 543), (5, 6), (543, 538))
    # object first: the start token predicts the first object token
    q = gold_query(lm, Y_FIRST, _fact("Buenos Aires"), "all")
    assert (q.input_ids, q.targets, q.gold) == ((3, 37, 468, 458), (0, 1, 2, 3), (37, 468, 458, 538))


def test_no_bos_and_no_eos_is_refused(bloom_lm):
    lm = _without_bos(bloom_lm, eos=False)
    for build in (
        lambda: with_bos(lm, [5]),
        lambda: causal_ids(lm, "Paris"),
        lambda: gold_query(lm, EN, _fact("Paris")),
    ):
        with pytest.raises(InputError, match="neither a BOS nor an EOS token") as err:
            build()
        assert err.value.field == "bos_token"


def test_gold_query_refuses_bad_target_token(bloom_lm):
    with pytest.raises(InputError) as err:
        gold_query(bloom_lm, EN, _fact("Paris"), "last")  # type: ignore[arg-type]
    assert err.value.field == "target_token"


# ------------------------------------------------------------------ fact sets
def test_attribution_queries_pair_prompt_and_gold(bloom_lm, bert_lm, fixture_facts):
    for lm in (bloom_lm, bert_lm):
        pairs = attribution_queries(lm, fixture_facts, "en")
        qs = gold_queries(lm, fixture_facts, "en", target_token="all")
        assert [g for _, g in pairs] == [list(q.gold) for q in qs]
        for (prompt, gold), fact in zip(pairs, fixture_facts.iter_facts("en")):
            tpl = fixture_facts.template("en", fact.relation).template
            if lm.kind == "masked":
                assert prompt == render_masked(tpl, fact.sub_label, len(gold), lm.mask_token)
            else:
                assert prompt == render_prefix(tpl, fact.sub_label)


def test_parallel_and_translation_prompts_share_one_alignment(bloom_lm, fixture_facts):
    lm = bloom_lm
    keys = parallel_keys(fixture_facts, ["fr", "en"])
    assert keys == sorted(keys) and keys
    by_file = parallel_keys(fixture_facts, ["fr", "en"], order="file")
    assert sorted(by_file) == keys
    fr_order = [(f.relation, f.lineid) for f in fixture_facts.iter_facts("fr")]
    assert by_file == [k for k in fr_order if k in set(keys)]
    pp = parallel_prompts(lm, fixture_facts, ["fr", "en"])
    src, tgt = translation_prompts(lm, fixture_facts, "fr", "en")
    assert sorted(zip(src, tgt)) == sorted(zip(pp["fr"], pp["en"]))
    with pytest.raises(InputError) as err:
        parallel_prompts(lm, fixture_facts, ["fr", "xx"])
    assert err.value.field == "language"


def test_fact_sentences_fill_subject_and_gold(fixture_facts):
    sents = fact_sentences(fixture_facts, ["en"])
    facts = list(fixture_facts.iter_facts("en"))
    assert len(sents) == len(facts)
    for s, f in zip(sents, facts):
        assert f.sub_label in s and f.obj_label in s and "[X]" not in s and "[Y]" not in s
    assert len(fact_sentences(fixture_facts)) == sum(fixture_facts.n_facts(g) for g in fixture_facts.languages)


def test_target_positions(bert_lm, bloom_lm):
    b = bert_lm.encode(["The capital of France is [MASK] .", "[MASK] ."])
    assert target_positions(bert_lm, b).tolist() == [6, 1]
    c = bloom_lm.encode(["The capital of France is", "Kenya"])
    assert target_positions(bloom_lm, c).tolist() == (c.attention_mask.sum(1) - 1).tolist()
    assert c.attention_mask.sum(1).tolist()[0] != c.attention_mask.sum(1).tolist()[1]
    with pytest.raises(InputError):
        target_positions(bert_lm, bert_lm.encode(["no mask here"]))
    assert render_query(EN, "Italy", "masked") == "The capital of Italy is [MASK] ."
