"""Random models built from config objects: for tests, notebooks and benchmarks.

:func:`build_random_model` creates a randomly initialised model of a supported
family (:data:`FAMILIES`: BERT, BLOOM, GPT-2, Qwen2, Gemma-3; :data:`MORE_FAMILIES`: Llama, Mistral,
Qwen3, Gemma-2, XGLM, XLM-RoBERTa) with a tokenizer trained in milliseconds on a
word list, saves both with ``save_pretrained`` and returns the directory, so the
ordinary :func:`lrp2_interp.models.loading.load_model` path is exercised end to end.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from lrp2_interp.files import follow_umask

Family = Literal["bert", "bloom", "gpt2", "qwen2", "gemma3", "llama", "mistral", "qwen3", "gemma2", "xglm", "xlmr"]
#: the families every test of the suite runs on
FAMILIES: tuple[Family, ...] = ("bert", "bloom", "gpt2", "qwen2", "gemma3")
#: further families checked by the family table (tests/models/test_families.py) only
MORE_FAMILIES: tuple[Family, ...] = ("llama", "mistral", "qwen3", "gemma2", "xglm", "xlmr")
ALL_FAMILIES: tuple[Family, ...] = FAMILIES + MORE_FAMILIES
MASKED_FAMILIES: tuple[Family, ...] = ("bert", "xlmr")

_BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_CAUSAL_SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


@dataclass(frozen=True)
class RandomModelConfig:
    family: Family = "bert"
    n_layers: int = 2
    d_model: int = 32
    n_heads: int = 4
    d_mlp: int = 64
    max_positions: int = 128
    vocab_size: int | None = None  # None: size of the trained tokenizer; larger pads the vocab
    seed: int = 0


# CJK ideographs, kana, hangul and full-width punctuation: one pre-token per character, as mBERT does
CJK_CHARS = r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef]"


def cjk_byte_level_pre_tokenizer():
    """Byte-level pre-tokenizer that first isolates CJK characters.

    Without it a byte-level BPE sees a whole Chinese sentence (no spaces) as one
    word and can learn it as a single token, so sub-words are not shared.
    """
    from tokenizers import Regex, pre_tokenizers

    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CJK_CHARS), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )


def wordpiece_vocab(corpus: Iterable[str], vocab_size: int, specials: Sequence[str] = _BERT_SPECIALS) -> dict[str, int]:
    """A deterministic WordPiece vocabulary: specials, every character (word-initial and ``##``), then
    whole words by frequency (ties by spelling) up to ``vocab_size``.

    The ``tokenizers`` WordPiece trainer is not deterministic (its vocabulary changes
    from run to run), which would make seeded builds differ; this one is.
    """
    from collections import Counter

    from tokenizers import normalizers, pre_tokenizers

    norm, pre = normalizers.BertNormalizer(lowercase=False), pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in corpus:
        words.update(w for w, _ in pre.pre_tokenize_str(norm.normalize_str(text)))
    chars = sorted({c for w in words for c in w})
    vocab = list(specials) + chars + [f"##{c}" for c in chars]
    seen = set(vocab)
    for word, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(vocab) >= vocab_size:
            break
        if word not in seen:
            vocab.append(word)
            seen.add(word)
    return {tok: i for i, tok in enumerate(vocab)}


def bert_tokenizer(corpus: Iterable[str], vocab_size: int = 2000):
    """A cased BERT WordPiece tokenizer over ``corpus`` ([CLS]/[SEP] template, CJK characters split)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    # transformers 5 exports BertTokenizerFast lazily (an alias of BertTokenizer), which its stubs do not list
    from transformers import BertTokenizerFast  # type: ignore[attr-defined]

    vocab = wordpiece_vocab(corpus, vocab_size)
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    return BertTokenizerFast(tokenizer_object=tok, do_lower_case=False)


def train_tokenizer(family: Family, corpus: Iterable[str], vocab_size: int = 2000):
    """Train a fast tokenizer on ``corpus``; WordPiece for BERT, byte-level BPE otherwise."""
    corpus = list(corpus)
    if family in MASKED_FAMILIES:
        return bert_tokenizer(corpus, vocab_size)
    return bpe_tokenizer(corpus, vocab_size)


def bpe_tokenizer(corpus: Iterable[str], vocab_size: int = 2000, *, prepend_bos: bool = False):
    """A byte-level BPE tokenizer over ``corpus`` (CJK characters isolated); ``prepend_bos`` adds ``<s>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = cjk_byte_level_pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_CAUSAL_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(list(corpus), trainer)
    if prepend_bos:
        bos = tok.token_to_id("<s>")
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", bos)]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )


def hf_config(cfg: RandomModelConfig, vocab_size: int, tokenizer, *, dropout: float | None = None) -> Any:
    """A transformers config object of the requested family and size.

    ``dropout`` (BERT and GPT-2 only) sets every dropout probability; None keeps the family's defaults.
    """
    from transformers import BertConfig, BloomConfig, GPT2Config, Qwen2Config

    common: dict[str, Any] = dict(pad_token_id=tokenizer.pad_token_id)
    if dropout is not None:
        names = {
            "bert": ("hidden_dropout_prob", "attention_probs_dropout_prob"),
            "gpt2": ("resid_pdrop", "embd_pdrop", "attn_pdrop"),
        }
        if cfg.family not in names:
            raise ValueError(f"dropout is only settable for bert and gpt2, not {cfg.family!r}")
        common.update(dict.fromkeys(names[cfg.family], dropout))
    if cfg.family == "bert":
        return BertConfig(
            vocab_size=vocab_size,
            hidden_size=cfg.d_model,
            num_hidden_layers=cfg.n_layers,
            num_attention_heads=cfg.n_heads,
            intermediate_size=cfg.d_mlp,
            max_position_embeddings=cfg.max_positions,
            architectures=["BertForMaskedLM"],
            **common,
        )
    if cfg.family == "bloom":
        return BloomConfig(
            vocab_size=vocab_size,
            hidden_size=cfg.d_model,
            n_layer=cfg.n_layers,
            n_head=cfg.n_heads,
            architectures=["BloomForCausalLM"],
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **common,
        )  # BLOOM's FFN is fixed at 4 x d_model
    if cfg.family == "gpt2":
        return GPT2Config(
            vocab_size=vocab_size,
            n_embd=cfg.d_model,
            n_layer=cfg.n_layers,
            n_head=cfg.n_heads,
            n_inner=cfg.d_mlp,
            n_positions=cfg.max_positions,
            architectures=["GPT2LMHeadModel"],
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **common,
        )
    if cfg.family == "qwen2":
        return Qwen2Config(
            vocab_size=vocab_size,
            hidden_size=cfg.d_model,
            num_hidden_layers=cfg.n_layers,
            num_attention_heads=cfg.n_heads,
            num_key_value_heads=max(1, cfg.n_heads // 2),
            intermediate_size=cfg.d_mlp,
            max_position_embeddings=cfg.max_positions,
            architectures=["Qwen2ForCausalLM"],
            tie_word_embeddings=False,
            **common,
        )
    if cfg.family == "gemma3":
        from transformers import Gemma3TextConfig

        # GQA, q/k norms, pre- and post-norms, scaled embeddings, local (sliding) and global RoPE layers
        return Gemma3TextConfig(
            vocab_size=vocab_size,
            hidden_size=cfg.d_model,
            num_hidden_layers=cfg.n_layers,
            num_attention_heads=cfg.n_heads,
            num_key_value_heads=max(1, cfg.n_heads // 2),
            head_dim=cfg.d_model // cfg.n_heads,
            intermediate_size=cfg.d_mlp,
            max_position_embeddings=cfg.max_positions,
            sliding_window=4,
            layer_types=["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(cfg.n_layers)],
            architectures=["Gemma3ForCausalLM"],
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            tie_word_embeddings=True,
            **common,
        )
    if cfg.family in MORE_FAMILIES:
        return more_config(cfg, vocab_size, tokenizer, common)
    raise ValueError(f"unknown family {cfg.family!r}; choose one of {ALL_FAMILIES}")


def more_config(cfg: RandomModelConfig, vocab_size: int, tokenizer, common: dict[str, Any]) -> Any:
    """The transformers config of a :data:`MORE_FAMILIES` family (Llama-like decoders, XGLM, XLM-RoBERTa)."""
    import transformers

    tokens = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    if cfg.family == "xlmr":
        return transformers.XLMRobertaConfig(
            vocab_size=vocab_size,
            hidden_size=cfg.d_model,
            num_hidden_layers=cfg.n_layers,
            num_attention_heads=cfg.n_heads,
            intermediate_size=cfg.d_mlp,
            max_position_embeddings=cfg.max_positions + 2,  # RoBERTa positions start after the padding index
            architectures=["XLMRobertaForMaskedLM"],
            **common,
        )
    if cfg.family == "xglm":
        return transformers.XGLMConfig(
            vocab_size=vocab_size,
            d_model=cfg.d_model,
            num_layers=cfg.n_layers,
            attention_heads=cfg.n_heads,
            ffn_dim=cfg.d_mlp,
            max_position_embeddings=cfg.max_positions,
            architectures=["XGLMForCausalLM"],
            decoder_start_token_id=tokenizer.eos_token_id,
            **tokens,
            **common,
        )
    names = {
        "llama": ("LlamaConfig", "LlamaForCausalLM"),
        "mistral": ("MistralConfig", "MistralForCausalLM"),
        "qwen3": ("Qwen3Config", "Qwen3ForCausalLM"),
        "gemma2": ("Gemma2Config", "Gemma2ForCausalLM"),
    }
    config_name, arch = names[cfg.family]
    extra: dict[str, Any] = {}
    if cfg.family in ("qwen3", "gemma2"):
        extra["head_dim"] = cfg.d_model // cfg.n_heads
    if cfg.family in ("mistral", "gemma2"):
        extra["sliding_window"] = 4  # so the local attention layers differ from global ones on the test prompts
    return getattr(transformers, config_name)(
        vocab_size=vocab_size,
        hidden_size=cfg.d_model,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=max(1, cfg.n_heads // 2),
        intermediate_size=cfg.d_mlp,
        max_position_embeddings=cfg.max_positions,
        architectures=[arch],
        tie_word_embeddings=cfg.family == "gemma2",
        **extra,
        **tokens,
        **common,
    )


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id rows: ``(ids [n, width] long, attention mask [n, width] long)``."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(list(r), dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def build_random_model(
    cfg: RandomModelConfig, corpus: Iterable[str], directory: str | Path, tokenizer_vocab_size: int = 2000
) -> Path:
    """Build, randomly initialise (seeded) and ``save_pretrained`` a model + tokenizer."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    directory = Path(directory)
    tokenizer = train_tokenizer(cfg.family, corpus, tokenizer_vocab_size)
    vocab = max(len(tokenizer), cfg.vocab_size or 0)
    config = hf_config(cfg, vocab, tokenizer)
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(cfg.seed)
    try:
        auto = AutoModelForMaskedLM if cfg.family in MASKED_FAMILIES else AutoModelForCausalLM
        model = auto.from_config(config).eval()
    finally:
        torch.random.set_rng_state(gen_state)
    start = time.time() - 1.0  # file times may be rounded down to the second
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    follow_umask(directory, since=start)  # save_pretrained writes the weights 0600
    return directory
