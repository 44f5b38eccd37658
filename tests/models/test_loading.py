"""load_model: TransformerLens wrapping equals plain transformers, sizes, hook names, errors."""

from __future__ import annotations

import json
import time

import pytest
import torch
import transformer_lens.model_bridge  # noqa: F401  (imported here so timings exclude imports)
from hf_capture import hf_run_with_ffn_inputs
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

from lrp2_interp.errors import InputError
from lrp2_interp.models.builders import FAMILIES, RandomModelConfig, train_tokenizer
from lrp2_interp.models.hooks import mlp_post_hook, resid_post_hook
from lrp2_interp.models.loading import load_model

pytestmark = pytest.mark.usefixtures("single_thread")

SENTENCES = [
    "The capital of France is Paris .",
    "Столица Германии — Берлин .",
    "La langue officielle de Japon est le japonais .",
    "Kenya",
]

# the module whose *input* is the FFN post-activation ("neurons") of block l, per family
DOWN_PROJ = {
    "bert": lambda m, l: m.bert.encoder.layer[l].output.dense,
    "bloom": lambda m, l: m.transformer.h[l].mlp.dense_4h_to_h,
    "gpt2": lambda m, l: m.transformer.h[l].mlp.c_proj,
    "qwen2": lambda m, l: m.model.layers[l].mlp.down_proj,
    "gemma3": lambda m, l: m.model.layers[l].mlp.down_proj,
}


@pytest.fixture(scope="module", params=FAMILIES)
def family_pair(request, tiny_model_dir):
    """(family, dir, LanguageModel via load_model, independently loaded HF model)."""
    fam = request.param
    directory = tiny_model_dir(fam)
    lm = load_model(directory)
    auto = AutoModelForMaskedLM if fam == "bert" else AutoModelForCausalLM
    hf = auto.from_pretrained(directory).eval()
    return fam, directory, lm, hf


def test_families_cover_the_five_supported_architectures():
    assert set(FAMILIES) == {"bert", "bloom", "gpt2", "qwen2", "gemma3"}


def test_bridge_logits_equal_hf_logits_on_padded_batch(family_pair):
    _, _, lm, hf = family_pair
    batch = lm.encode(SENTENCES)
    lengths = batch.attention_mask.sum(1)
    assert lengths.min() < lengths.max(), "the batch must actually contain padding"
    with torch.no_grad():
        ours = lm.logits(batch)
        ref = hf(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    assert ours.shape == ref.shape == (len(SENTENCES), batch.input_ids.shape[1], len(lm.tokenizer))
    real = batch.attention_mask.bool()
    assert (ours[real] - ref[real]).abs().max().item() < 1e-5
    assert ref[real].std() > 0.01, "a degenerate model would make the comparison vacuous"


def test_padding_does_not_change_real_positions(family_pair):
    """Each row of a padded batch equals the same sentence run alone (right padding is masked)."""
    _, _, lm, _ = family_pair
    batch = lm.encode(SENTENCES)
    with torch.no_grad():
        padded = lm.logits(batch)
        for i, s in enumerate(SENTENCES):
            alone = lm.logits(lm.encode([s]))[0]
            n = int(batch.attention_mask[i].sum())
            assert alone.shape[0] == n
            assert (padded[i, :n] - alone).abs().max().item() < 1e-5


def test_sizes_and_kind(family_pair, tiny_sizes):
    fam, _, lm, _ = family_pair
    assert lm.kind == ("masked" if fam == "bert" else "causal")
    assert lm.n_layers == tiny_sizes["n_layers"]
    assert lm.d_model == tiny_sizes["d_model"]
    # BLOOM's FFN width is fixed at 4 x d_model; the others take d_mlp from the config
    assert lm.d_mlp == (4 * tiny_sizes["d_model"] if fam == "bloom" else tiny_sizes["d_mlp"])
    assert lm.dtype == torch.float32 and lm.device == torch.device("cpu")
    assert lm.special_ids == frozenset(i for i in lm.tokenizer.all_special_ids)
    if fam == "bert":
        assert lm.mask_token == "[MASK]"
        assert lm.mask_token_id == lm.tokenizer.convert_tokens_to_ids("[MASK]")
        assert lm.mask_token_id in lm.special_ids
    else:
        with pytest.raises(InputError) as err:
            _ = lm.mask_token
        assert err.value.field == "mask_token" and "causal" in str(err.value)


def test_hook_name_functions():
    assert resid_post_hook(0) == "blocks.0.hook_resid_post"
    assert resid_post_hook(11) == "blocks.11.hook_resid_post"
    assert mlp_post_hook(2) == "blocks.2.mlp.hook_post"


def test_hook_names_exist_and_are_range_checked(family_pair):
    _, _, lm, _ = family_pair
    for layer in range(lm.n_layers):
        assert lm.resid_post(layer) == resid_post_hook(layer) and lm.resid_post(layer) in lm.bridge.hook_dict
        assert lm.mlp_post(layer) == mlp_post_hook(layer) and lm.mlp_post(layer) in lm.bridge.hook_dict
    for bad in (-1, lm.n_layers, 1.0, "0"):
        with pytest.raises(InputError) as err:
            lm.resid_post(bad)
        assert err.value.field == "layer"
        with pytest.raises(InputError):
            lm.mlp_post(bad)


def test_hook_points_read_the_documented_states(family_pair):
    """resid_post(l) is HF's hidden_states[l + 1]; mlp_post(l) is the input of the FFN output projection."""
    fam, _, lm, hf = family_pair
    batch, out, cache, grabbed = hf_run_with_ffn_inputs(lm, hf, DOWN_PROJ[fam], SENTENCES)
    real = batch.attention_mask.bool()
    for layer in range(lm.n_layers):
        post = cache[lm.mlp_post(layer)]
        assert post.shape[-1] == lm.d_mlp
        assert (post[real] - grabbed[layer][real]).abs().max().item() < 1e-5
        # HF applies the final norm to the last hidden state of decoders (not of BERT)
        if fam == "bert" or layer < lm.n_layers - 1:
            resid = cache[lm.resid_post(layer)]
            assert resid.shape[-1] == lm.d_model
            assert (resid[real] - out.hidden_states[layer + 1][real]).abs().max().item() < 1e-5


def test_causal_model_has_no_mask_token(bloom_lm):
    with pytest.raises(InputError) as err:
        _ = bloom_lm.mask_token
    assert err.value.field == "mask_token"
    with pytest.raises(InputError):
        _ = bloom_lm.mask_token_id


def test_wrapping_a_causal_model_as_masked_is_refused(tiny_model_dir):
    """kind='masked' over objects without a mask token fails with InputError at load time."""
    d = tiny_model_dir("bloom")
    hf = AutoModelForCausalLM.from_pretrained(d)
    tok = AutoTokenizer.from_pretrained(d)
    with pytest.raises(InputError) as err:
        load_model(d, kind="masked", hf_model=hf, tokenizer=tok)
    assert err.value.field == "kind" and "causal LM" in str(err.value)


def test_loading_a_causal_checkpoint_as_masked_raises_input_error(tiny_model_dir):
    with pytest.raises(InputError) as err:
        load_model(tiny_model_dir("bloom"), kind="masked")
    assert err.value.file is not None


@pytest.mark.parametrize(
    "name", ["/definitely/not/here/model", "./not-here-model", "missing_model_dir_xyz", "some-org/not-a-model"]
)
def test_nonexistent_model_raises_input_error_quickly(name):
    start = time.perf_counter()
    with pytest.raises(InputError) as err:
        load_model(name)
    assert time.perf_counter() - start < 2.0
    assert err.value.file == name and name in str(err.value)


def test_nonexistent_model_dir_under_tmp(tmp_path):
    missing = tmp_path / "no_such_model"
    with pytest.raises(InputError) as err:
        load_model(missing)
    assert err.value.file == str(missing) and "does not exist" in str(err.value)


def test_dir_without_architectures_asks_for_kind(tiny_model_dir, tmp_path):
    import shutil

    d = tmp_path / "noarch"
    shutil.copytree(tiny_model_dir("gpt2"), d)
    cfg = json.loads((d / "config.json").read_text())
    cfg.pop("architectures", None)
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError) as err:
        load_model(d)
    assert err.value.field == "architectures" and "kind=" in str(err.value)
    assert load_model(d, kind="causal").kind == "causal"


def test_bert_tokenizer_keeps_cls_sep_after_reload(bert_lm):
    tok = bert_lm.tokenizer
    ids = bert_lm.encode(["The capital of France is Paris ."]).input_ids[0].tolist()
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.cls_token == "[CLS]" and tok.sep_token == "[SEP]" and tok.pad_token == "[PAD]"
    assert tok.cls_token_id not in bert_lm.token_ids("Paris")  # add_special_tokens=False
    assert ids[1:-1] == bert_lm.token_ids("The capital of France is Paris .")
    assert tok.padding_side == "right"


def test_bert_tokenizer_tokenizes_the_same_after_reload(tiny_corpus, tmp_path):
    tok = train_tokenizer("bert", tiny_corpus, 600)
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    for s in ["The capital of Argentina is Buenos Aires .", "Paris", "Berlin"]:
        assert again.tokenize(s) == tok.tokenize(s)


def test_causal_tokenizers_have_pad_and_bos(bloom_lm, gpt2_lm, qwen2_lm):
    for lm in (bloom_lm, gpt2_lm, qwen2_lm):
        tok = lm.tokenizer
        assert tok.pad_token == "<pad>" and tok.bos_token == "<s>"
        assert tok.padding_side == "right"
        # the tokenizer adds no BOS itself; encode prepends it, as probing and attribution do
        assert lm.tokenizer("Paris")["input_ids"] == lm.token_ids("Paris")
        assert lm.encode(["Paris"]).input_ids[0].tolist() == [tok.bos_token_id] + lm.token_ids("Paris")


def test_build_is_seeded_and_restores_global_rng(tmp_path, tiny_corpus):
    from lrp2_interp.models.builders import build_random_model

    state = torch.random.get_rng_state()
    a = build_random_model(RandomModelConfig(family="gpt2", n_layers=1), tiny_corpus, tmp_path / "a", 300)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = build_random_model(RandomModelConfig(family="gpt2", n_layers=1), tiny_corpus, tmp_path / "b", 300)
    c = build_random_model(RandomModelConfig(family="gpt2", n_layers=1, seed=1), tiny_corpus, tmp_path / "c", 300)
    ma, mb, mc = (AutoModelForCausalLM.from_pretrained(d) for d in (a, b, c))
    sa, sb, sc = ma.state_dict(), mb.state_dict(), mc.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_public_api_resolves_lazily():
    """Every name listed in ``lrp2_interp.__all__`` resolves, and importing the package loads no torch."""
    import subprocess
    import sys

    import lrp2_interp

    for name in lrp2_interp.__all__:
        assert getattr(lrp2_interp, name) is not None, name
    code = "import sys, lrp2_interp; assert 'torch' not in sys.modules, 'import-time work'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------ issue 11: broken model folders
def _broken(tiny_model_dir, tmp_path, family="bert"):
    import shutil

    d = tmp_path / "model"
    shutil.copytree(tiny_model_dir(family), d)
    return d


@pytest.mark.parametrize(
    "case, needle",
    [
        ("no tokenizer files", "no tokenizer files"),
        ("config {}", "model_type"),
        ("config not JSON", "not valid JSON"),
        ("empty folder", "no config.json"),
        ("no weights", "no model weights"),
        ("truncated safetensors", "truncated"),
    ],
)
def test_broken_model_folder_is_one_clear_error(tiny_model_dir, tmp_path, case, needle):
    """A folder without tokenizer files used to load a 5-token all-UNK tokenizer and give results (exit 0)."""
    import shutil

    from lrp2_interp.errors import InputError

    d = _broken(tiny_model_dir, tmp_path)
    if case == "no tokenizer files":
        for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
            (d / name).unlink(missing_ok=True)
    elif case == "config {}":
        (d / "config.json").write_text("{}")
    elif case == "config not JSON":
        (d / "config.json").write_text("{not json")
    elif case == "empty folder":
        shutil.rmtree(d)
        d.mkdir()
    elif case == "no weights":
        (d / "model.safetensors").unlink()
    else:
        w = d / "model.safetensors"
        w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(InputError, match=needle) as err:
        load_model(d)
    assert "\n" not in str(err.value) and str(d) in str(err.value)


def test_input_longer_than_the_positions_is_refused(bert_lm):
    from lrp2_interp.errors import InputError

    limit = bert_lm.max_positions
    assert limit == 128
    with pytest.raises(InputError, match="longer than the 128 positions"):
        bert_lm.pad_ids([[1] * (limit + 1)])
    with pytest.raises(InputError, match="positions"):
        bert_lm.encode(["Paris " * 300])
    assert bert_lm.pad_ids([[1] * limit]).input_ids.shape == (1, limit)
