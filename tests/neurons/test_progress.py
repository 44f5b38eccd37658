"""The knowledge-neuron stage shows bars with ETAs on stderr (attribution, overlap and control, causal check),
none with ``progress=False``, and the same numbers and files either way (issue 21)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from lrp2_interp.attribution.attribute import AttributionConfig
from lrp2_interp.facts import load_facts
from lrp2_interp.lrp2.vectors import compute_language_vectors
from lrp2_interp.neurons.causal import CausalConfig
from lrp2_interp.neurons.pipeline import KnowledgeConfig, run_knowledge_analysis
from lrp2_interp.prompts import prompt_corpus

pytestmark = pytest.mark.usefixtures("single_thread")

#: the bars of the long stages, each run to its end with elapsed<remaining (the ETA)
FINISHED = ("knowledge-neuron IG", "overlap + permutation control", "causal check fr")
BARS = (*FINISHED, "permutation control:")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _finished_with_eta(desc: str, err: str) -> bool:
    return re.search(re.escape(desc) + r": 100%\|[^\r\n]*\[\d\d:\d\d<\d\d:\d\d", err) is not None


def test_neurons_stage_bars_show_etas_and_change_no_number_or_file(bert_lm, fixture_facts_root, tmp_path, capsys):
    facts = load_facts(fixture_facts_root, ["en", "fr"], ["P36"]).parallel()
    vectors = compute_language_vectors(
        bert_lm, {lg: prompt_corpus(facts, lg, bert_lm) for lg in ("en", "fr")}, progress=False
    )
    cfg = KnowledgeConfig(
        languages=("fr",),
        lrp2={"fr": (0, 2)},
        attribution=AttributionConfig(n_steps=2),
        n_perm=20,
        n_boot=20,
        chunk=3,
        causal=CausalConfig(n_random=1),
    )
    capsys.readouterr()
    on = run_knowledge_analysis(bert_lm, facts, vectors, cfg, tmp_path / "on", progress=True)
    err_on = capsys.readouterr().err
    off = run_knowledge_analysis(bert_lm, facts, vectors, cfg, tmp_path / "off", progress=False)
    err_off = capsys.readouterr().err
    assert on is not None and off is not None
    for desc in BARS:
        assert desc in err_on, desc
        assert desc not in err_off, desc
    for desc in FINISHED:
        assert _finished_with_eta(desc, err_on), desc
    # the same numbers ...
    assert on.scores.keys() == off.scores.keys()
    for key in on.scores:
        torch.testing.assert_close(on.scores[key], off.scores[key], rtol=0, atol=0)
    pd.testing.assert_frame_equal(on.overlap_summary.table, off.overlap_summary.table)
    pd.testing.assert_frame_equal(on.control.table, off.control.table)
    pd.testing.assert_frame_equal(on.relation_baseline, off.relation_baseline)
    pd.testing.assert_frame_equal(on.causal_summary(), off.causal_summary())
    # ... and the same files, byte for byte (figures.md included)
    files_on = _files(tmp_path / "on")
    assert "figures.md" in files_on and "causal.csv" in files_on
    assert files_on == _files(tmp_path / "off")
    # a resumed run counts the stored attribution chunks: its bar still reaches its end
    run_knowledge_analysis(bert_lm, facts, vectors, cfg, tmp_path / "on", progress=True)
    assert _finished_with_eta("knowledge-neuron IG", capsys.readouterr().err)
