"""Models split by an accelerate device_map (CPU + disk offload here): the same scores as the plain load."""

from __future__ import annotations

import pytest
import torch

from lrp2_interp.attribution.attribute import AttributionConfig, attribute_neurons
from lrp2_interp.errors import InputError
from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks
from lrp2_interp.lrp2.vectors import LanguageVectors
from lrp2_interp.models.loading import load_model
from lrp2_interp.probing.probe import ProbeConfig, probe

pytestmark = pytest.mark.usefixtures("single_thread")

# the first block and the head stay on the CPU, the later blocks are offloaded to disk
MAPS = {
    "gemma3": {
        "model.embed_tokens": "cpu",
        "model.rotary_emb": "cpu",
        "model.layers.0": "cpu",
        "model.layers.1": "disk",
        "model.layers.2": "disk",
        "model.norm": "cpu",
        "lm_head": "cpu",
    },
    "bert": {
        "bert.embeddings": "cpu",
        "bert.encoder.layer.0": "cpu",
        "bert.encoder.layer.1": "disk",
        "bert.encoder.layer.2": "disk",
        "cls": "cpu",
    },
}


@pytest.fixture(scope="module", params=sorted(MAPS))
def pair(request, tiny_model_dir, tmp_path_factory):
    """(plain load, the same model loaded with a CPU + disk device_map)."""
    fam = request.param
    d = tiny_model_dir(fam)
    offload = tmp_path_factory.mktemp(f"offload-{fam}")
    split = load_model(d, device_map=MAPS[fam], offload_folder=offload)
    assert split.bridge.original_model.hf_device_map == MAPS[fam]
    # disk-offloaded weights live on the meta device and are read from the safetensors file at each call
    assert any(p.device.type == "meta" for p in split.bridge.original_model.parameters()), "nothing was offloaded"
    return load_model(d), split


def shift_hooks(lm):
    g = torch.Generator().manual_seed(0)
    v = {lang: torch.randn(lm.n_layers, lm.d_model, generator=g) for lang in ("en", "fr")}
    vec = LanguageVectors(lm.name, lm.n_layers, lm.d_model, v, fingerprint=lm.fingerprint)
    return lrp2_hooks(lm, vec, "fr", LRP2Config(m=0, n=lm.n_layers - 1))


@pytest.mark.parametrize("path", ["fast", "reference"])
@pytest.mark.parametrize("lrp2", [False, True])
def test_offloaded_model_gives_identical_probing_scores(pair, fixture_facts, path, lrp2):
    plain, split = pair
    cfg = ProbeConfig(max_candidates=5, path=path)
    a = probe(plain, fixture_facts, "fr", cfg, shift_hooks(plain) if lrp2 else None).table
    b = probe(split, fixture_facts, "fr", cfg, shift_hooks(split) if lrp2 else None).table
    assert len(a) > 0 and a.equals(b)


def test_offloaded_model_fires_every_hook_at_every_layer(pair):
    plain, split = pair
    batch = split.encode(["The capital of France is Paris .", "Kenya"])
    seen: dict[str, torch.Tensor] = {}

    def grab(name):
        return lambda x, hook: seen.__setitem__(name, x.detach().clone())

    names = [f(j) for j in range(split.n_layers) for f in (split.resid_post, split.mlp_post, split.mlp_out)]
    with torch.no_grad():
        split.logits(batch, [(n, grab(n)) for n in names])
        _, cache = plain.bridge.run_with_cache(batch.input_ids, attention_mask=batch.attention_mask)
    assert sorted(seen) == sorted(names)
    for n in names:
        assert torch.equal(seen[n], cache[n]), n


def test_offloaded_model_attributes_on_the_reference_path_with_identical_scores(pair):
    plain, split = pair
    prompt, target = (
        (f"The capital of France is {plain.mask_token} .", "Paris")
        if plain.kind == "masked"
        else ("The capital of France is", " Paris")
    )
    a = attribute_neurons(plain, prompt, target, AttributionConfig(path="reference"), progress=False)
    b = attribute_neurons(split, prompt, target, AttributionConfig(), progress=False)  # auto: the reference path
    assert b.path == "reference"
    assert torch.equal(a.scores, b.scores)
    with pytest.raises(InputError, match="device_map"):
        attribute_neurons(split, prompt, target, AttributionConfig(path="fast"), progress=False)


def test_device_map_with_a_model_in_memory_is_refused(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    d = tiny_model_dir("gpt2")
    with pytest.raises(InputError, match="hf_model"):
        load_model(d, hf_model=AutoModelForCausalLM.from_pretrained(d), device_map="auto")


def test_cli_device_map_options():
    from lrp2_interp.cli.inputs import max_memory
    from lrp2_interp.cli.main import build_parser

    args = build_parser().parse_args(
        ["probe", "--model", "m", "--out", "o", "--device-map", "auto", "--max-memory", "0=70GiB", "cpu=200GiB"]
    )
    assert args.device_map == "auto"
    assert max_memory(args.max_memory) == {0: "70GiB", "cpu": "200GiB"}
    assert max_memory(None) is None
    with pytest.raises(InputError, match="DEVICE=SIZE"):
        max_memory(["70GiB"])
