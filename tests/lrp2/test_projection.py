"""LRP2 hooks on tiny models: hand-checked shifts, identities, positions, errors, composition, control."""

from __future__ import annotations

import pytest
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.lrp2.projection import LRP2Config, lrp2, lrp2_hooks, shifts
from lrp2_interp.lrp2.vectors import LanguageVectors, compute_language_vectors
from lrp2_interp.models.loading import LanguageModel
from lrp2_interp.prompts import prompt_corpus

pytestmark = pytest.mark.usefixtures("single_thread")

QUERIES = ["La capitale de Japon est Tokyo .", "La langue officielle de Brésil est le portugais .", "Kenya"]
ATOL = 1e-5


@pytest.fixture(scope="module", params=["bert_lm", "bloom_lm"])
def setup(request, fixture_facts):
    lm: LanguageModel = request.getfixturevalue(request.param)
    sents = {lang: prompt_corpus(fixture_facts, lang, lm) for lang in ("en", "fr")}
    vecs = compute_language_vectors(lm, sents, progress=False)
    return lm, vecs


def _run(lm, batch, hooks=None, names=()):
    """Logits and the resid_post states named, read by hooks placed *after* ``hooks``."""
    states: dict[str, torch.Tensor] = {}
    readers = [(n, (lambda x, hook, n=n: states.__setitem__(n, x.detach().clone()))) for n in names]
    with torch.no_grad():
        logits = lm.logits(batch, list(hooks or []) + readers)
    return logits, states


def _no_hooks_left(lm) -> bool:
    """No user (non-permanent) forward hook on any hook point (the bridge wires permanent ones itself)."""
    return all(h.is_permanent for hp in lm.bridge.hook_dict.values() for h in hp.fwd_hooks)


def test_vectors_differ_between_languages(setup):
    lm, vecs = setup
    for layer in range(lm.n_layers):
        assert (vecs["fr"][layer] - vecs["en"][layer]).norm() > 1e-2


def test_shift_at_m_is_exact_and_n_is_applied_on_top(setup):
    lm, vecs = setup
    m, n = 0, 2
    batch = lm.encode(QUERIES)
    names = [lm.resid_post(layer) for layer in range(lm.n_layers)]
    _, clean = _run(lm, batch, names=names)
    hooks = lrp2_hooks(lm, vecs, "fr", LRP2Config(m, n))
    assert [h[0] for h in hooks] == [lm.resid_post(m), lm.resid_post(n)]
    _, shifted = _run(lm, batch, hooks, names)
    v_l, v_en = vecs["fr"], vecs["en"]
    # layer m: clean - v_l[m] + v_en[m] at every position (padding included)
    expected_m = clean[names[m]] - v_l[m] + v_en[m]
    assert (shifted[names[m]] - expected_m).abs().max() < ATOL
    # layer n: (state propagated from the LIRP-shifted layer m) - v_en[n] + v_l[n]
    _, lirp_only = _run(lm, batch, hooks[:1], names)
    expected_n = lirp_only[names[n]] - v_en[n] + v_l[n]
    assert (shifted[names[n]] - expected_n).abs().max() < ATOL
    # ... and the LIRP shift really propagates (layer n is not just clean + LSRP)
    assert (lirp_only[names[n]] - clean[names[n]]).abs().max() > 1e-3
    assert _no_hooks_left(lm)


def test_cache_inside_the_context_manager_sees_the_shift(setup):
    lm, vecs = setup
    batch = lm.encode(QUERIES[:1])
    with torch.no_grad():
        _, clean = lm.bridge.run_with_cache(batch.input_ids, attention_mask=batch.attention_mask)
        with lrp2(lm, vecs, "fr", LRP2Config(1, 2)) as same:
            assert same is lm
            _, cache = lm.bridge.run_with_cache(batch.input_ids, attention_mask=batch.attention_mask)
    delta = vecs["en"][1] - vecs["fr"][1]
    assert (cache[lm.resid_post(1)] - clean[lm.resid_post(1)] - delta).abs().max() < ATOL
    assert (cache[lm.resid_post(0)] - clean[lm.resid_post(0)]).abs().max() < ATOL  # before m: untouched


def test_identity_when_language_vector_equals_english(setup):
    lm, vecs = setup
    same = LanguageVectors(vecs.model_name, vecs.n_layers, vecs.d_model, {"en": vecs["en"], "fr": vecs["en"].clone()})
    batch = lm.encode(QUERIES)
    clean, _ = _run(lm, batch)
    out, _ = _run(lm, batch, lrp2_hooks(lm, same, "fr", LRP2Config(0, 2)))
    assert (out - clean).abs().max() < ATOL
    real, _ = _run(lm, batch, lrp2_hooks(lm, vecs, "fr", LRP2Config(0, 2)))
    assert (real - clean).abs().max() > 1e-3, "with different vectors LRP2 must change the logits"


def test_english_query_is_unchanged(setup):
    lm, vecs = setup
    batch = lm.encode(["The capital of Japan is Tokyo .", "Kenya"])
    clean, _ = _run(lm, batch)
    for m, n in [(0, 1), (0, 2), (1, 2)]:
        out, _ = _run(lm, batch, lrp2_hooks(lm, vecs, "en", LRP2Config(m, n)))
        assert torch.equal(out, clean)


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_m_equal_n_is_identity(setup, layer):
    lm, vecs = setup
    batch = lm.encode(QUERIES)
    clean, _ = _run(lm, batch)
    hooks = lrp2_hooks(lm, vecs, "fr", LRP2Config(layer, layer))
    assert len(hooks) == 1
    out, _ = _run(lm, batch, hooks)
    assert (out - clean).abs().max() < ATOL


def test_last_position_only(setup):
    lm, vecs = setup
    batch = lm.encode(QUERIES[:1])  # one sentence: the last position is its last real token
    names = [lm.resid_post(0)]
    _, clean = _run(lm, batch, names=names)
    _, out = _run(lm, batch, lrp2_hooks(lm, vecs, "fr", LRP2Config(0, 2, positions=(-1,))), names)
    diff = out[names[0]] - clean[names[0]]
    assert diff[0, :-1].abs().max() == 0.0
    assert (diff[0, -1] - (vecs["en"][0] - vecs["fr"][0])).abs().max() < ATOL
    # explicit positions (with duplicates of the same index from both ends) are shifted once
    _, out2 = _run(lm, batch, lrp2_hooks(lm, vecs, "fr", LRP2Config(0, 2, positions=(1, -1))), names)
    d2 = out2[names[0]] - clean[names[0]]
    changed = (d2[0].abs().max(-1).values > 0).nonzero().flatten().tolist()
    assert changed == [1, batch.input_ids.shape[1] - 1]


def test_last_position_in_a_padded_batch_is_the_last_real_token(setup):
    lm, vecs = setup
    hooks = lrp2_hooks(lm, vecs, "fr", LRP2Config(0, 2, positions=(-1,)))
    batch = lm.encode(QUERIES)
    lengths = batch.attention_mask.sum(1).tolist()
    assert min(lengths) < batch.input_ids.shape[1]
    name = lm.resid_post(0)
    _, clean = _run(lm, batch, names=[name])
    _, out = _run(lm, batch, hooks, [name])
    diff = out[name] - clean[name]
    delta = vecs["en"][0] - vecs["fr"][0]
    for i, n in enumerate(lengths):
        assert (diff[i, n - 1] - delta).abs().max() < ATOL, f"row {i}: its last real token was not shifted"
        assert diff[i, : n - 1].abs().sum() == 0.0 and diff[i, n:].abs().sum() == 0.0


def test_last_position_outside_logits_is_refused_not_miscounted(setup):
    """Regression: a hook registered on the bridge (``lrp2()``, or ``bridge.run_with_hooks``) cannot see where
    each padded row ends; it used to count position -1 from the padded width, shifting a padding slot of the
    short row instead of its last token.  Now it refuses; ``lm.logits`` binds the lengths and is exact."""
    lm, vecs = setup
    cfg = LRP2Config(0, 2, positions=(-1,))
    batch = lm.encode(QUERIES[1:])  # two rows of different lengths, right-padded
    assert len(set(batch.attention_mask.sum(1).tolist())) == 2
    with pytest.raises(InputError) as err:
        with lrp2(lm, vecs, "fr", cfg):
            lm.bridge(batch.input_ids, attention_mask=batch.attention_mask)
    assert err.value.field == "positions"
    assert _no_hooks_left(lm)
    with pytest.raises(InputError, match="not bound"), torch.no_grad():
        lm.bridge.run_with_hooks(
            batch.input_ids, attention_mask=batch.attention_mask, fwd_hooks=lrp2_hooks(lm, vecs, "fr", cfg)
        )
    assert _no_hooks_left(lm)
    # positions from the start need no lengths: lrp2() still runs them
    with lrp2(lm, vecs, "fr", LRP2Config(0, 2, positions=(0,))), torch.no_grad():
        lm.bridge(batch.input_ids, attention_mask=batch.attention_mask)
    assert _no_hooks_left(lm)


@pytest.mark.parametrize(
    "m, n, field", [(2, 1, "m"), (3, 3, "m"), (0, 3, "n"), (-2, 1, "m"), (0, -2, "n"), (0, -1, "m")]
)
def test_bad_layers(setup, m, n, field):
    lm, vecs = setup
    with pytest.raises(InputError) as err:
        lrp2_hooks(lm, vecs, "fr", LRP2Config(m, n))
    assert err.value.field == field
    with pytest.raises(InputError):
        with lrp2(lm, vecs, "fr", LRP2Config(m, n)):
            pass
    assert _no_hooks_left(lm)


def test_bad_positions_and_language(setup):
    lm, vecs = setup
    with pytest.raises(InputError) as err:
        lrp2_hooks(lm, vecs, "fr", LRP2Config(0, 1, positions="last"))
    assert err.value.field == "positions"
    with pytest.raises(InputError) as err:
        lrp2_hooks(lm, vecs, "de", LRP2Config(0, 1))
    assert err.value.field == "language"


def test_context_manager_applies_then_removes_hooks(setup):
    lm, vecs = setup
    batch = lm.encode(QUERIES)
    cfg = LRP2Config(0, 2)
    clean, _ = _run(lm, batch)
    with_hooks, _ = _run(lm, batch, lrp2_hooks(lm, vecs, "fr", cfg))
    with lrp2(lm, vecs, "fr", cfg):
        inside, _ = _run(lm, batch)
        assert not _no_hooks_left(lm)
    assert _no_hooks_left(lm)
    after, _ = _run(lm, batch)
    assert (inside - with_hooks).abs().max() < ATOL
    assert torch.equal(after, clean)
    with pytest.raises(RuntimeError, match="boom"):
        with lrp2(lm, vecs, "fr", cfg):
            raise RuntimeError("boom")
    assert _no_hooks_left(lm)


def test_context_manager_nested_in_other_hooks_keeps_them(setup):
    lm, vecs = setup
    batch = lm.encode(QUERIES)
    torch.manual_seed(1)
    noise = torch.randn(lm.d_model)
    outer = [(lm.resid_post(1), lambda x, hook: x + noise)]
    with torch.no_grad(), lm.bridge.hooks(fwd_hooks=outer):
        before = lm.logits(batch)
        with lrp2(lm, vecs, "fr", LRP2Config(0, 2)):
            lm.logits(batch)
        after = lm.logits(batch)
    assert torch.equal(before, after)
    assert _no_hooks_left(lm)


def test_hooks_compose_with_another_hook(setup):
    lm, vecs = setup
    batch = lm.encode(QUERIES)
    torch.manual_seed(2)
    extra = torch.randn(lm.d_model)
    name = lm.resid_post(0)
    _, clean = _run(lm, batch, names=[name])
    hooks = lrp2_hooks(lm, vecs, "fr", LRP2Config(0, 2))
    _, both = _run(lm, batch, hooks + [(name, lambda x, hook: x + extra)], [name])
    _, both_rev = _run(lm, batch, [(name, lambda x, hook: x + extra)] + hooks, [name])
    expected = clean[name] + (vecs["en"][0] - vecs["fr"][0]) + extra
    assert (both[name] - expected).abs().max() < ATOL
    assert (both_rev[name] - expected).abs().max() < ATOL


def test_random_control_same_norms_other_direction(setup):
    lm, vecs = setup
    for m, n in [(0, 2), (1, 2)]:
        real = shifts(vecs, "fr", LRP2Config(m, n))
        rand = shifts(vecs, "fr", LRP2Config(m, n, control="random", seed=3))
        again = shifts(vecs, "fr", LRP2Config(m, n, control="random", seed=3))
        other = shifts(vecs, "fr", LRP2Config(m, n, control="random", seed=4))
        assert set(rand) == set(real) == {m, n}
        for layer in real:
            assert torch.allclose(rand[layer].norm(), real[layer].norm(), rtol=1e-5)
            cos = torch.nn.functional.cosine_similarity(rand[layer], real[layer], dim=0)
            assert abs(cos) < 0.9
            assert torch.equal(rand[layer], again[layer])
            assert not torch.allclose(rand[layer], other[layer])
    # through the model: the control changes the output, differently from the real shift
    batch = lm.encode(QUERIES)
    clean, _ = _run(lm, batch)
    real_out, _ = _run(lm, batch, lrp2_hooks(lm, vecs, "fr", LRP2Config(0, 2)))
    rand_out, _ = _run(lm, batch, lrp2_hooks(lm, vecs, "fr", LRP2Config(0, 2, control="random")))
    assert (rand_out - clean).abs().max() > 1e-3 and (rand_out - real_out).abs().max() > 1e-3


def test_real_shifts_are_the_vector_differences(setup):
    _, vecs = setup
    s = shifts(vecs, "fr", LRP2Config(0, 2))
    assert torch.equal(s[0], vecs["en"][0] - vecs["fr"][0])
    assert torch.equal(s[2], vecs["fr"][2] - vecs["en"][2])
    s_src = shifts(vecs, "en", LRP2Config(0, 2, source="fr"))
    assert torch.equal(s_src[0], vecs["fr"][0] - vecs["en"][0])


def test_probe_with_lrp2_differs_from_baseline(setup, fixture_facts):
    from lrp2_interp.probing.probe import ProbeConfig, probe

    lm, vecs = setup
    cfg = ProbeConfig()
    base = probe(lm, fixture_facts, "fr", cfg).table
    en = vecs["en"].clone()
    en[0] += 30 * torch.randn(lm.d_model, generator=torch.Generator().manual_seed(0))  # a big LIRP at m=0 only
    boosted = LanguageVectors(vecs.model_name, vecs.n_layers, vecs.d_model, {"en": en, "fr": vecs["fr"]})
    shifted = probe(lm, fixture_facts, "fr", cfg, fwd_hooks=lrp2_hooks(lm, boosted, "fr", LRP2Config(0, 1))).table
    with lrp2(lm, boosted, "fr", LRP2Config(0, 1)):
        in_ctx = probe(lm, fixture_facts, "fr", cfg).table
    assert list(shifted["rank"]) == list(in_ctx["rank"])
    assert list(shifted["rank"]) != list(base["rank"])
    same = probe(lm, fixture_facts, "fr", cfg, fwd_hooks=lrp2_hooks(lm, vecs, "fr", LRP2Config(1, 1))).table
    assert list(same["rank"]) == list(base["rank"])
