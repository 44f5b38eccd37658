"""Every model family checked the same way, on tiny random models built from config (the README's family table).

One row of :data:`TABLE` per family; every check below runs on every row:

* ``hf_logits``: the bridge's logits equal HF's (eager attention) on a right-padded batch;
* ``hooks``: every hook point of :mod:`lrp2_interp.models.hooks` fires once per layer with the right shape,
  ``resid_post`` is HF's hidden state and ``mlp.hook_post`` is the input of HF's FFN output projection;
* ``lrp2``: LRP2's hooks (``blocks.{i}.hook_resid_post``) give the logits of HF with the same vectors
  added to the outputs of the same HF layers;
* ``ig``: integrated gradients are complete (sum of attributions = f(x) - f(0) per layer);
* ``fast``: probing's fast path ranks exactly as the reference path; attribution's fast path equals
  its reference (families without a fast attribution path fall back to the reference, checked too).

mT5 (encoder-decoder) is refused by ``load_model`` with one clear message.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

from lrp2_interp.attribution.attribute import AttributionConfig, attribute_neurons, choose_path
from lrp2_interp.errors import InputError
from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks, shifts
from lrp2_interp.lrp2.vectors import LanguageVectors
from lrp2_interp.models.builders import ALL_FAMILIES, MASKED_FAMILIES
from lrp2_interp.models.hooks import embed_hook, mlp_out_hook, mlp_post_hook, mlp_pre_hook, unembed_hook
from lrp2_interp.models.loading import load_model
from lrp2_interp.probing.probe import ProbeConfig, probe

pytestmark = pytest.mark.usefixtures("single_thread")


@dataclass(frozen=True)
class Row:
    """What the README's family table says of one family."""

    name: str  # as the README lists it
    hf_class: str
    layers: str  # attribute path of the HF layer list
    down_proj: str  # attribute path of the FFN output projection inside one layer
    fast_attribution: bool  # a fast attribution path exists (else the reference path runs)


TABLE = {
    "llama": Row("Llama", "LlamaForCausalLM", "model.layers", "mlp.down_proj", True),
    "mistral": Row("Mistral", "MistralForCausalLM", "model.layers", "mlp.down_proj", True),
    "qwen2": Row("Qwen2", "Qwen2ForCausalLM", "model.layers", "mlp.down_proj", True),
    "qwen3": Row("Qwen3", "Qwen3ForCausalLM", "model.layers", "mlp.down_proj", True),
    # Gemma-2's final logit soft-capping is not in the fast attribution head: attribution runs the reference path
    "gemma2": Row("Gemma-2", "Gemma2ForCausalLM", "model.layers", "mlp.down_proj", False),
    "gemma3": Row("Gemma-3", "Gemma3ForCausalLM", "model.layers", "mlp.down_proj", True),
    "bloom": Row("BLOOM", "BloomForCausalLM", "transformer.h", "mlp.dense_4h_to_h", True),
    "gpt2": Row("GPT-2 (and mGPT)", "GPT2LMHeadModel", "transformer.h", "mlp.c_proj", True),
    "xglm": Row("XGLM", "XGLMForCausalLM", "model.layers", "fc2", True),
    "bert": Row("BERT (mBERT)", "BertForMaskedLM", "bert.encoder.layer", "output.dense", True),
    "xlmr": Row("XLM-RoBERTa", "XLMRobertaForMaskedLM", "roberta.encoder.layer", "output.dense", False),
}
SENTENCES = ["The capital of France is Paris .", "Kenya", "Столица Германии — Берлин ."]


def get(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class Case:
    family: str
    lm: object
    hf: object  # independently loaded HF model, eager attention

    @property
    def row(self) -> Row:
        return TABLE[self.family]

    def hf_layers(self):
        return get(self.hf, self.row.layers)


@pytest.fixture(scope="module", params=ALL_FAMILIES)
def case(request, tiny_model_dir) -> Case:
    fam = request.param
    directory = tiny_model_dir(fam)
    auto = AutoModelForMaskedLM if fam in MASKED_FAMILIES else AutoModelForCausalLM
    return Case(fam, load_model(directory), auto.from_pretrained(directory, attn_implementation="eager").eval())


def test_the_table_covers_every_family_built():
    assert set(TABLE) == set(ALL_FAMILIES)


def test_hf_logits(case):
    lm, hf = case.lm, case.hf
    assert type(lm.bridge.original_model).__name__ == case.row.hf_class
    batch = lm.encode(SENTENCES)
    real = batch.attention_mask.bool()
    assert not real.all(), "the batch must contain padding"
    with torch.no_grad():
        ours = lm.logits(batch)
        ref = hf(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    assert ours.shape == ref.shape
    assert (ours[real] - ref[real]).abs().max().item() < 1e-5
    assert ref[real].std() > 0.01


def test_hooks(case):
    lm, hf = case.lm, case.hf
    batch = lm.encode(SENTENCES)
    b, width = batch.input_ids.shape
    names = {embed_hook(): lm.d_model, unembed_hook(): lm.d_model}
    for layer in range(lm.n_layers):
        names.update({lm.resid_post(layer): lm.d_model, mlp_out_hook(layer): lm.d_model})
        names.update({mlp_post_hook(layer): lm.d_mlp, mlp_pre_hook(layer): lm.d_mlp})
    seen: dict[str, list[torch.Tensor]] = {n: [] for n in names}

    def grab(name):  # by the name registered: the bridge's HookPoint may carry an alias's name
        return lambda x, hook: seen[name].append(x.detach().clone())

    with torch.no_grad():
        lm.logits(batch, [(n, grab(n)) for n in names])
    for name, width_out in names.items():
        assert len(seen[name]) == 1, f"{name} fired {len(seen[name])} times"
        assert seen[name][0].shape == (b, width, width_out), name
    # the states are the documented ones: HF hidden states and the input of HF's FFN output projection
    grabbed: dict[int, torch.Tensor] = {}
    handles = [
        get(layer, case.row.down_proj).register_forward_pre_hook(
            lambda mod, args, j=j: grabbed.__setitem__(j, args[0].detach())
        )
        for j, layer in enumerate(case.hf_layers())
    ]
    try:
        with torch.no_grad():
            out = hf(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True)
    finally:
        for h in handles:
            h.remove()
    real = batch.attention_mask.bool()
    for layer in range(lm.n_layers):
        post = seen[mlp_post_hook(layer)][0]
        assert (post[real] - grabbed[layer][real]).abs().max().item() < 1e-5, layer
        if lm.kind == "masked" or layer < lm.n_layers - 1:  # HF normalises the last state of decoders
            resid = seen[lm.resid_post(layer)][0]
            assert (resid[real] - out.hidden_states[layer + 1][real]).abs().max().item() < 1e-5, layer


def vectors_for(lm) -> LanguageVectors:
    g = torch.Generator().manual_seed(0)
    v = {lang: torch.randn(lm.n_layers, lm.d_model, generator=g) for lang in ("en", "fr")}
    return LanguageVectors(lm.name, lm.n_layers, lm.d_model, v, fingerprint=lm.fingerprint)


def test_lrp2(case):
    lm, hf = case.lm, case.hf
    vec, cfg = vectors_for(lm), LRP2Config(m=0, n=lm.n_layers - 1)
    batch = lm.encode(SENTENCES)
    real = batch.attention_mask.bool()

    def add(delta):
        def hook(mod, args, out):
            return (out[0] + delta,) + tuple(out[1:]) if isinstance(out, tuple) else out + delta

        return hook

    layers = case.hf_layers()
    handles = [layers[j].register_forward_hook(add(d)) for j, d in shifts(vec, "fr", cfg).items()]
    try:
        with torch.no_grad():
            expected = hf(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        ours = lm.logits(batch, lrp2_hooks(lm, vec, "fr", cfg))
        clean = lm.logits(batch)
    assert (ours[real] - expected[real]).abs().max().item() < 1e-4
    assert (ours[real] - clean[real]).abs().max().item() > 1e-2, "the shifts must change the logits"


def prompt_and_target(lm) -> tuple[str, str]:
    if lm.kind == "masked":
        return f"The capital of France is {lm.mask_token} .", "Paris"
    return "The capital of France is", " Paris"


def test_ig(case):
    lm = case.lm
    prompt, target = prompt_and_target(lm)
    res = attribute_neurons(lm, prompt, target, AttributionConfig(n_steps=32, method="gausslegendre"), progress=False)
    gap = (res.f_input - res.f_baseline).abs()
    assert gap.max() > 0, "zeroing a layer's neurons must change f"
    assert res.deltas.abs().max().item() <= 1e-3 * gap.max().item() + 1e-9, (res.deltas, gap)


def test_fast(case, fixture_facts):
    lm = case.lm
    lang = "en"
    cfg = ProbeConfig(max_candidates=5, batch_size=4)
    fast = probe(lm, fixture_facts, lang, cfg).table
    ref = probe(lm, fixture_facts, lang, ProbeConfig(max_candidates=5, batch_size=4, path="reference")).table
    assert len(ref) > 0 and fast.equals(ref)
    prompt, target = prompt_and_target(lm)
    acfg = AttributionConfig()
    assert (choose_path(lm, acfg) is not None) == case.row.fast_attribution
    r = attribute_neurons(lm, prompt, target, AttributionConfig(path="reference"), progress=False)
    a = attribute_neurons(lm, prompt, target, acfg, progress=False)
    assert a.path == ("fast" if case.row.fast_attribution else "reference")
    scale = r.scores.abs().max().item()
    assert scale > 0
    assert (a.scores - r.scores).abs().max().item() <= 1e-4 * scale


def test_encoder_decoder_models_are_refused(tmp_path, tiny_corpus):
    """mT5 (T5's architecture): the bridge has an encoder-decoder adapter, the package needs encoder-only or
    decoder-only LMs, so load_model refuses it by name before loading any weights."""
    from transformers import MT5Config, MT5ForConditionalGeneration

    from lrp2_interp.models.builders import bpe_tokenizer

    tok = bpe_tokenizer(tiny_corpus, 300)
    config = MT5Config(vocab_size=len(tok), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
    MT5ForConditionalGeneration(config).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    with pytest.raises(InputError) as err:
        load_model(tmp_path)
    assert "encoder-decoder" in str(err.value) and "MT5ForConditionalGeneration" in str(err.value)


def test_the_readme_lists_every_family_of_the_table():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    for row in TABLE.values():
        assert f"`{row.hf_class}`" in readme, row.hf_class
