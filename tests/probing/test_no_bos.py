"""Causal probing with a tokenizer that has no BOS token (Qwen2/2.5): EOS is the start token, nothing goes unscored."""

from __future__ import annotations

import copy
import dataclasses
import shutil

import pytest
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.facts import load_facts
from lrp2_interp.probing.probe import ProbeConfig, probe, probe_scores
from lrp2_interp.prompts import render_filled

pytestmark = pytest.mark.usefixtures("single_thread")
Y_FIRST = "[Y] est la capitale de [X] ."


def _no_bos(lm, *, eos: bool = True):
    """A copy of ``lm`` whose tokenizer has no BOS token (as Qwen2's), and optionally no EOS token."""
    tok = copy.deepcopy(lm.tokenizer)
    tok.bos_token = None
    if not eos:
        tok.eos_token = None
    assert tok.bos_token_id is None and (tok.eos_token_id is None) != eos
    return dataclasses.replace(lm, tokenizer=tok)


@pytest.fixture(scope="module")
def y_first_facts(tmp_path_factory, fixture_facts_root):
    """The fixture's French facts with an object-first capital template."""
    root = tmp_path_factory.mktemp("yfirst")
    shutil.copytree(fixture_facts_root / "fr", root / "fr")
    lines = (root / "fr" / "templates.jsonl").read_text(encoding="utf-8").splitlines()
    lines = [
        '{"relation": "P36", "template": "' + Y_FIRST + '", "label": "capitale"}' if '"P36"' in ln else ln
        for ln in lines
    ]
    (root / "fr" / "templates.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_facts(root, ["fr"], ["P36"])


@torch.no_grad()
def _hf_sentence_logprob(lm, ids: list[int]) -> tuple[float, float]:
    """(sum of log p(token i | tokens < i) for i >= 1, the log-prob of token 1) straight from the HF model."""
    logits = lm.bridge.original_model(torch.tensor([ids])).logits[0].double()
    lp = torch.log_softmax(logits, -1)
    per = lp[:-1].gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
    return float(per.sum()), float(per[0])


@pytest.mark.parametrize("path", ["reference", "fast"])
def test_first_object_token_is_scored_without_bos(qwen2_lm, y_first_facts, path):
    lm = _no_bos(qwen2_lm)
    eos = lm.tokenizer.eos_token_id
    cfg = ProbeConfig(path=path, max_candidates=4)
    pools, scores = probe_scores(lm, y_first_facts, "fr", cfg, exact=True)
    checked = 0
    for fact in y_first_facts.iter_facts("fr"):
        key = (fact.relation, fact.lineid)
        for cand in pools[key]:
            ids = [eos] + lm.token_ids(render_filled(Y_FIRST, fact.sub_label, cand))
            total, first = _hf_sentence_logprob(lm, ids)
            # the object's first token is the sentence's first real token; its log-prob is far from 0
            assert lm.token_ids(cand)[0] == ids[1] and first < -1.0
            assert scores[key][cand] == pytest.approx(total, abs=1e-4), (key, cand)
            checked += 1
    assert checked >= 8


def test_reference_equals_fast_without_bos(qwen2_lm, y_first_facts):
    lm = _no_bos(qwen2_lm)
    cfg = ProbeConfig(max_candidates=5)
    _, fast = probe_scores(lm, y_first_facts, "fr", cfg, exact=True)
    _, ref = probe_scores(lm, y_first_facts, "fr", dataclasses.replace(cfg, path="reference"), exact=True)
    for key in ref:
        for cand, s in ref[key].items():
            assert fast[key][cand] == pytest.approx(s, abs=1e-5, rel=1e-6)
    a = probe(lm, y_first_facts, "fr", cfg).table
    b = probe(lm, y_first_facts, "fr", dataclasses.replace(cfg, path="reference")).table
    assert a.equals(b)


def test_no_bos_and_no_eos_is_refused_in_one_line(qwen2_lm, y_first_facts):
    lm = _no_bos(qwen2_lm, eos=False)
    for path in ("reference", "fast"):
        with pytest.raises(InputError, match="neither a BOS nor an EOS") as err:
            probe(lm, y_first_facts, "fr", ProbeConfig(path=path))
        assert err.value.field == "bos_token" and "\n" not in str(err.value)
