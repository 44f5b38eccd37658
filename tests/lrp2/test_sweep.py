"""The cached (m, n) sweep engine equals probing each pair separately; shards resume."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks, shifts
from lrp2_interp.lrp2.sweep import SweepConfig, run_sweep
from lrp2_interp.lrp2.sweep_engine import sweep_scores
from lrp2_interp.lrp2.vectors import compute_language_vectors
from lrp2_interp.probing.probe import ProbeConfig, probe_scores
from lrp2_interp.probing.types import fact_pools
from lrp2_interp.prompts import prompt_corpus
from lrp2_interp.store import ShardStore

pytestmark = pytest.mark.usefixtures("single_thread")
FAMILIES = ["bert", "bloom", "gpt2", "qwen2", "gemma3"]


@pytest.fixture(scope="module", params=FAMILIES)
def lm_vec(request, tiny_model_dir, fixture_facts):
    from lrp2_interp.models.loading import load_model

    lm = load_model(tiny_model_dir(request.param))
    corpus = {lang: prompt_corpus(fixture_facts, lang, lm) for lang in ("en", "fr")}
    vec = compute_language_vectors(lm, corpus, progress=False)
    # random language vectors far apart, so LRP2 changes the scores visibly
    g = torch.Generator().manual_seed(1)
    big = {lang: vec[lang] + 3 * torch.randn(vec[lang].shape, generator=g) for lang in ("en", "fr")}
    return lm, dataclasses.replace(vec, vectors=big)


@pytest.mark.parametrize("decoder_score", ["sum", "mean"])
def test_engine_scores_equal_per_pair_probing(lm_vec, fixture_facts, decoder_score):
    lm, vec = lm_vec
    cfg = ProbeConfig(decoder_score=decoder_score, max_candidates=5, batch_size=4)
    order, pools = fact_pools(fixture_facts, "fr", cfg)
    pairs = [(m, n) for m in range(lm.n_layers) for n in range(lm.n_layers) if m <= n]

    def shifts_of(m, n):
        return shifts(vec, "fr", LRP2Config(m, n))

    out = sweep_scores(lm, fixture_facts, "fr", order, pools, cfg, pairs, shifts_of, exact=True)
    ref_cfg = dataclasses.replace(cfg, path="reference")
    for cond in [None, *pairs]:
        hooks = None if cond is None else lrp2_hooks(lm, vec, "fr", LRP2Config(*cond))
        _, ref = probe_scores(lm, fixture_facts, "fr", ref_cfg, hooks)
        got = out[cond]
        assert set(got) == set(ref)
        for key in ref:
            for cand, s in ref[key].items():
                assert got[key][cand] == pytest.approx(s, abs=1e-5, rel=1e-6), (cond, key, cand)


def test_run_sweep_cached_equals_per_pair_and_resumes(lm_vec, fixture_facts, tmp_path):
    lm, vec = lm_vec
    base = SweepConfig(language="fr", include_equal=True, unit_facts=5, probe=ProbeConfig(max_candidates=4))
    fast = run_sweep(lm, fixture_facts, vec, base, progress=False)
    slow = run_sweep(lm, fixture_facts, vec, dataclasses.replace(base, engine="per_pair"), progress=False)
    pd.testing.assert_frame_equal(fast.facts_table, slow.facts_table)
    pd.testing.assert_frame_equal(fast.accuracy_table(), slow.accuracy_table())
    stored = run_sweep(lm, fixture_facts, vec, base, store=ShardStore(tmp_path), progress=False)
    shards = sorted((tmp_path / "shards").glob("*.parquet"))
    assert len(shards) == -(-fixture_facts.n_facts("fr") // 5)
    pd.testing.assert_frame_equal(stored.accuracy_table(), fast.accuracy_table())
    # a removed shard is recomputed, the others are reused as they are
    mtimes = {p.name: p.stat().st_mtime_ns for p in shards}
    shards[0].unlink()
    again = run_sweep(lm, fixture_facts, vec, base, store=ShardStore(tmp_path), progress=False)
    pd.testing.assert_frame_equal(again.accuracy_table(), fast.accuracy_table())
    assert all((tmp_path / "shards" / n).stat().st_mtime_ns == t for n, t in mtimes.items() if n != shards[0].name)


def test_cached_engine_handles_the_embedding_shift_point(lm_vec, fixture_facts):
    """Layer -1 (the embedding output, paper layer 0) must not be read as 'the last layer' by the engine."""
    lm, vec = lm_vec
    base = SweepConfig(
        language="fr",
        layers=(-1, 0, lm.n_layers - 1),
        unit_facts=5,
        probe=ProbeConfig(max_candidates=4),
    )
    fast = run_sweep(lm, fixture_facts, vec, base, progress=False)
    slow = run_sweep(lm, fixture_facts, vec, dataclasses.replace(base, engine="per_pair"), progress=False)
    pd.testing.assert_frame_equal(fast.facts_table, slow.facts_table)
