"""Language vectors: equal a hand computation, round-trip through disk, refuse other models' vectors."""

from __future__ import annotations

import json

import pytest
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.lrp2.vectors import (
    LanguageVectors,
    compute_language_vectors,
    mean_states,
    read_sentences,
    token_mask,
)
from lrp2_interp.models.loading import LanguageModel, load_model
from lrp2_interp.prompts import prompt_corpus

pytestmark = pytest.mark.usefixtures("single_thread")

SENTENCES = {
    "en": [
        "The capital of France is Paris .",
        "Kenya",
        "The official language of Japan is [MASK] .",
        "Peru is located in South America . Chile is located in South America too .",
    ],
    "ru": ["Столица Германии — Берлин .", "Официальный язык России — русский .", "Перу"],
}


@pytest.fixture(params=["bert_lm", "bloom_lm", "qwen2_lm"])
def lm(request) -> LanguageModel:
    return request.getfixturevalue(request.param)


def hand_vector(lm: LanguageModel, sentences: list[str]) -> torch.Tensor:
    """Mean over sentences of the mean over real tokens at resid_post; one unpadded sentence at a time."""
    per_sentence = []
    for s in sentences:
        ids = lm.tokenizer(s)["input_ids"]
        bos = lm.tokenizer.bos_token_id
        if lm.kind == "causal" and ids[:1] != [bos]:  # causal queries always start with BOS
            ids = [bos] + ids
        ids = torch.tensor([ids])
        with torch.no_grad():
            _, cache = lm.bridge.run_with_cache(ids, names_filter=lambda n: n.endswith("hook_resid_post"))
        keep = torch.tensor([t not in lm.tokenizer.all_special_ids for t in ids[0].tolist()])
        if not keep.any():
            continue
        per_sentence.append(
            torch.stack([cache[f"blocks.{l}.hook_resid_post"][0, keep].mean(0) for l in range(lm.n_layers)])
        )
    return torch.stack(per_sentence).mean(0)


def test_vectors_equal_hand_computation(lm):
    vecs = compute_language_vectors(lm, SENTENCES, batch_size=3, progress=False)
    assert vecs.languages == ("en", "ru")
    assert (vecs.model_name, vecs.n_layers, vecs.d_model) == (lm.name, lm.n_layers, lm.d_model)
    assert dict(vecs.n_sentences) == {"en": 4, "ru": 3}
    for lang, sents in SENTENCES.items():
        v = vecs[lang]
        assert v.shape == (lm.n_layers, lm.d_model) and v.dtype == torch.float32
        torch.testing.assert_close(v, hand_vector(lm, sents), atol=2e-5, rtol=1e-5)
    assert not torch.allclose(vecs["en"], vecs["ru"], atol=1e-3)


def test_special_and_padding_tokens_are_excluded(bert_lm):
    """Including [CLS]/[SEP] (or padding) in the mean would give a measurably different vector."""
    sents = SENTENCES["en"]
    ours = compute_language_vectors(bert_lm, {"en": sents}, progress=False)["en"]
    with_specials = []
    for s in sents:
        ids = bert_lm.tokenizer(s, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            _, cache = bert_lm.bridge.run_with_cache(ids)
        with_specials.append(
            torch.stack([cache[f"blocks.{l}.hook_resid_post"][0].mean(0) for l in range(bert_lm.n_layers)])
        )
    assert (ours - torch.stack(with_specials).mean(0)).abs().max() > 1e-3


@pytest.mark.parametrize("name", ["bert_lm", "bloom_lm"])
def test_all_tokens_option_averages_every_non_padding_token(request, name):
    """tokens="all" (the paper): the mean includes [CLS]/[SEP]/[MASK] or BOS; only padding is dropped."""
    lm = request.getfixturevalue(name)
    sents = SENTENCES["en"]
    batch = lm.encode(sents)
    real = token_mask(lm, batch, "real")
    every = token_mask(lm, batch, "all")
    assert torch.equal(every, batch.attention_mask.bool())  # padding is the only thing left out
    assert (every & ~real).any() and not (real & ~every).any()  # "all" adds the special tokens
    specials = torch.isin(batch.input_ids, torch.tensor(sorted(lm.special_ids)))
    assert torch.equal(every & ~real, specials & every)
    per_sentence = []
    for s in sents:  # hand computation: one unpadded sentence at a time, every token
        ids = lm.encode([s]).input_ids
        with torch.no_grad():
            _, cache = lm.bridge.run_with_cache(ids, names_filter=lambda n: n.endswith("hook_resid_post"))
        per_sentence.append(torch.stack([cache[f"blocks.{l}.hook_resid_post"][0].mean(0) for l in range(lm.n_layers)]))
    vec = compute_language_vectors(lm, {"en": sents}, batch_size=3, progress=False, tokens="all")
    assert vec.tokens == "all"
    torch.testing.assert_close(vec["en"], torch.stack(per_sentence).mean(0), atol=2e-5, rtol=1e-5)
    default = compute_language_vectors(lm, {"en": sents}, progress=False)
    assert default.tokens == "real" and (default["en"] - vec["en"]).abs().max() > 1e-3
    assert mean_states(lm, ["[MASK]"], tokens="all").shape[0] == 1  # nothing is skipped with "all"
    with pytest.raises(InputError, match="tokens"):
        compute_language_vectors(lm, {"en": sents}, progress=False, tokens="some")


def test_corpus_is_recorded_with_name_size_and_sha256(bert_lm, tmp_path):
    import hashlib

    sents = SENTENCES["ru"]
    vec = compute_language_vectors(
        bert_lm, {"ru": sents}, corpus={"ru": "my corpus"}, progress=False, corpus_meta={"ru": {"file": "ru.txt"}}
    )
    meta = dict(vec.corpus_meta["ru"])
    want = hashlib.sha256("".join(s + "\n" for s in sents).encode("utf-8")).hexdigest()
    assert meta == {"name": "my corpus", "n_sentences": 3, "n_used": 3, "sha256": want, "file": "ru.txt"}
    back = LanguageVectors.load(vec.save(tmp_path / "v"))
    assert dict(back.corpus_meta["ru"]) == meta and back.tokens == "real"
    torch.testing.assert_close(back.at("ru", -1), vec.embeddings["ru"])
    assert json.loads((tmp_path / "v.json").read_text())["corpus_meta"]["ru"]["sha256"] == want


def test_batch_size_and_sentence_order_do_not_matter(bloom_lm):
    sents = SENTENCES["en"]
    a = mean_states(bloom_lm, sents, batch_size=1)
    b = mean_states(bloom_lm, sents, batch_size=8)
    assert a.shape == (4, bloom_lm.n_layers, bloom_lm.d_model)
    torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)
    c = mean_states(bloom_lm, list(reversed(sents)), batch_size=8)
    torch.testing.assert_close(c, a.flip(0), atol=2e-5, rtol=1e-5)


def test_sentences_of_only_special_tokens_are_skipped(bert_lm):
    states = mean_states(bert_lm, ["[MASK]", "Kenya", "[MASK] [MASK]"])
    assert states.shape[0] == 1
    with pytest.raises(InputError) as err:
        compute_language_vectors(bert_lm, {"en": ["[MASK]"]}, progress=False)
    assert err.value.field == "sentences"
    with pytest.raises(InputError):
        compute_language_vectors(bert_lm, {"en": []}, progress=False)


def test_prompt_corpus(bert_lm, bloom_lm, fixture_facts):
    masked = prompt_corpus(fixture_facts, "fr", bert_lm)
    causal = prompt_corpus(fixture_facts, "fr", bloom_lm)
    assert len(masked) == len(causal) == fixture_facts.n_facts("fr")
    assert masked[0] == "Kenya est situé en [MASK] ."
    assert causal[0] == "Kenya est situé en"


def test_read_sentences(tmp_path):
    p = tmp_path / "s.txt"
    p.write_text("one\n\n  two  \nthree\n", encoding="utf-8")
    assert read_sentences(p) == ["one", "two", "three"]
    assert read_sentences(p, limit=2) == ["one", "two"]
    with pytest.raises(InputError) as err:
        read_sentences(tmp_path / "missing.txt")
    assert err.value.file == str(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_sentences(tmp_path / "empty.txt")
    assert "empty" in str(err.value)


# ------------------------------------------------------------------ save / load
@pytest.fixture(scope="module")
def bert_vectors(bert_lm, fixture_facts) -> LanguageVectors:
    sents = {lang: prompt_corpus(fixture_facts, lang, bert_lm) for lang in fixture_facts.languages}
    return compute_language_vectors(bert_lm, sents, corpus=dict.fromkeys(sents, "probe prompts"), progress=False)


def test_save_load_round_trip(bert_vectors, bert_lm, tmp_path):
    path = bert_vectors.save(tmp_path / "vecs")
    assert path == tmp_path / "vecs.safetensors" and path.is_file()
    assert (tmp_path / "vecs.json").is_file()
    assert not list(tmp_path.glob("*.tmp*")), "atomic writes leave no temporary files"
    back = LanguageVectors.load(tmp_path / "vecs.json")  # any suffix names the pair
    assert (back.model_name, back.n_layers, back.d_model) == (
        bert_vectors.model_name,
        bert_vectors.n_layers,
        bert_vectors.d_model,
    )
    assert back.languages == ("en", "fr", "ru")
    assert dict(back.corpus) == {"en": "probe prompts", "fr": "probe prompts", "ru": "probe prompts"}
    assert dict(back.n_sentences) == dict(bert_vectors.n_sentences) == {"en": 21, "fr": 20, "ru": 20}
    for lang in back.languages:
        assert torch.equal(back[lang], bert_vectors[lang])
    back.check_model(bert_lm)  # accepted


def test_unknown_language_vector(bert_vectors):
    with pytest.raises(InputError) as err:
        bert_vectors["de"]
    assert err.value.field == "language" and "en, fr, ru" in str(err.value)


def test_vectors_of_a_model_with_another_width_are_refused(bert_vectors, tiny_model_dir):
    wide = load_model(tiny_model_dir("bert", d_model=48))
    with pytest.raises(InputError) as err:
        bert_vectors.check_model(wide)
    assert err.value.field == "d_model" and "32" in str(err.value) and "48" in str(err.value)


def test_vectors_of_a_model_with_another_depth_are_refused(bert_vectors, tiny_model_dir):
    deep = load_model(tiny_model_dir("bert", n_layers=2))
    with pytest.raises(InputError):
        bert_vectors.check_model(deep)


def test_vectors_of_another_named_model_are_refused(bert_vectors, tiny_model_dir):
    other = load_model(tiny_model_dir("bert", seed=1))  # same sizes, other model
    assert (other.n_layers, other.d_model) == (bert_vectors.n_layers, bert_vectors.d_model)
    with pytest.raises(InputError) as err:
        bert_vectors.check_model(other)
    assert err.value.field == "model_name"


def test_lrp2_hooks_check_the_model(bert_vectors, bloom_lm):
    from lrp2_interp.lrp2.projection import LRP2Config, lrp2_hooks

    with pytest.raises(InputError):
        lrp2_hooks(bloom_lm, bert_vectors, "fr", LRP2Config(0, 1))


def test_load_missing_files(bert_vectors, tmp_path):
    with pytest.raises(InputError) as err:
        LanguageVectors.load(tmp_path / "nothing")
    assert err.value.file == str(tmp_path / "nothing.safetensors") and "not found" in str(err.value)
    path = bert_vectors.save(tmp_path / "v")
    path.with_suffix(".json").unlink()
    with pytest.raises(InputError) as err:
        LanguageVectors.load(path)
    assert err.value.file == str(tmp_path / "v.json")


def test_load_malformed_sidecar(bert_vectors, tmp_path):
    path = bert_vectors.save(tmp_path / "v")
    sidecar = path.with_suffix(".json")
    sidecar.write_text('{\n  "model_name": "x",\n  "n_layers": 3,\n  oops\n}\n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        LanguageVectors.load(path)
    assert err.value.file == str(sidecar) and str(sidecar) in str(err.value)
    assert err.value.line == 4 and "malformed JSON" in str(err.value)


@pytest.mark.parametrize("key", ["model_name", "n_layers", "d_model"])
def test_load_sidecar_missing_field(bert_vectors, tmp_path, key):
    path = bert_vectors.save(tmp_path / "v")
    sidecar = path.with_suffix(".json")
    meta = json.loads(sidecar.read_text(encoding="utf-8"))
    del meta[key]
    sidecar.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(InputError) as err:
        LanguageVectors.load(path)
    assert err.value.file == str(sidecar) and err.value.field == key


def test_load_shape_mismatch(bert_vectors, tmp_path):
    path = bert_vectors.save(tmp_path / "v")
    sidecar = path.with_suffix(".json")
    meta = json.loads(sidecar.read_text(encoding="utf-8"))
    meta["d_model"] = 64
    sidecar.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(InputError) as err:
        LanguageVectors.load(path)
    assert err.value.file == str(path) and err.value.field in {"en", "fr", "ru"}
