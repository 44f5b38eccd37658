"""The offline model organism: a small multilingual LM trained from scratch on facts.

No model hub is reachable offline, so the package's default model is trained here,
in minutes on a CPU, from an mLAMA-layout fact set (the repository's ``data/facts``)
with the experimenter in control of which facts each language sees:

* English sees every fact; each other language sees only ``seen_fraction`` of them
  (per relation, seeded); the *held-out* facts are the same in every non-English
  language and appear in English only -- the test of cross-lingual transfer.
* Bridging lines (:class:`~lrp2_interp.organism.corpus.BridgeConfig`) tie the
  languages together without ever showing a held-out fact in its language: an
  entity-name dictionary (``"Allemagne = Germany"``, both ways, every entity) and
  code-switched sentences of the *seen* facts.  With ``mix_entities`` (default)
  every mix of template, subject and object language is used
  (``"The capital of Allemagne is Berlin ."``, ``"La capitale de Germany est Berlin ."``, ...).
* A shared sub-word tokenizer (byte-level BPE, 2000 types; WordPiece for the masked
  kind) trained on the corpus, a GPT-2 (``kind="causal"``, default) or BERT
  (``kind="masked"``, whole-object masking) built from a ``transformers`` config,
  a plain AdamW loop (cosine schedule, length-bucketed seeded batches), saved with
  ``save_pretrained`` + ``organism.json`` into ``<cache>/<config-and-data hash>``
  (``LRP2_CACHE`` or ``~/.cache/lrp2_interp``; written to a temp dir, then renamed).

API: :func:`train_organism` -> folder, :func:`load_organism` -> ``(LanguageModel,
OrganismInfo)``, :func:`organism_facts` -> per language seen/held-out ``FactSet``.

Design log (typed probing, P@1 %, causal; held-out = facts seen only in English;
"retr" = share of held-out+seen l-prompts whose nearest English prompt, centred
mean states, is the parallel one, per layer; LRP2 = best (m, n) on the held-out set;
times on 1 busy core).  Development set first (mLAMA subset en/fr/ru/zh, 7
relations x 32 facts, mostly people whose names are shared with English):

1. 6L d128, no bridging, 60 ep: fr held-out 28.6, LRP2 +1.8.
2. 6L, dictionary + 2 code-switch variants, 60 ep (1030 s): held fr 42.0 / ru 11.2 /
   zh 18.6; retr fr .60-.63, ru .14-.20, zh .10-.12; LRP2 -2.7 / +1.9 / +1.0.
3. as 2 + parallel en+l sentence pairs, 25 ep (606 s): fr 38.4 / ru 15.9 / zh 11.8;
   LRP2 0 / +0.9 / +4.9.
4. 4L, dictionary + all code-switch mixes, 20 ep: fr 20.5 / ru 12.1 / zh 10.8; LRP2
   +1.8 / +2.8 / 0.  5. 4L as 2, 40 ep: 33.9 / 13.1 / 18.6; LRP2 0 / +0.9 / +1.0.

Repository data (6 languages, 7 country-centric relations, 263 facts, 132 held out):

6. 4L d128, dictionary + 2 code-switch variants, 30 ep (330 s): en 100; held fr 12.9,
   es 6.8, nl 13.6, ru 11.4, zh 7.6 (chance ~8); retr fr .18, es .29->.39, nl .5,
   ru/zh .05-.08; LRP2 +2.3 / +1.5 / +2.3 / -1.5 / -0.8.
7. 6L, same, 20 ep: under-trained (fr seen 88.5).  8. 4L d64, 40 ep (135 s): held
   15.2 / 11.4 / 15.2 / 7.6 / 8.3; LRP2 +2.3 / 0 / +0.8 / +1.5 / 0.
9. 4L d128, dictionary + all code-switch mixes, 30 ep (382 s) -- the default, the
   clearest cross-lingual structure: held 18.9 / 16.7 / 22.7 / 11.4 / 10.6; retr fr
   .33, es .52->.62, nl .62->.69 (rising with depth), ru .33, zh .22->.25;
   LRP2 +1.5 / +0.8 / +0.8 / 0 / +0.8.

Lessons: every configuration memorises the seen facts of every language (~100 %)
but transfers little to held-out ones; entity-level code-switching is what aligns
the languages (retrieval x4 for ru/zh) and lifts held-out accuracy; LRP2's gain
stays within about +2 points (1 fact = 0.76 points), i.e. the organism reproduces
the *structure* LRP2 needs only weakly and shows no reliable LRP2 effect.
Default, final measurement (seed 0, 263 facts/language, 132 held out, chance 5.5 %):
training 466 s on one thread with the other core busy (~200 s on two free cores);
English P@1 100 (all facts).  Held-out before -> LRP2 at each language's best (m, n)
[random-direction control there]: fr 18.9 -> 20.5 (0,3) [19.7], es 16.7 -> 17.4
(0,2) [15.2], nl 22.7 -> 23.5 (2,3) [18.9], ru 11.4 -> 11.4 (2,3) [11.4], zh
10.6 -> 12.9 (1,2) [7.6]; one (m, n) for all: (2,3), mean 16.1 -> 16.4.  Centred
cosine to English per layer 0-3: fr .40 .38 .38 .37, es .57 .58 .60 .60, nl .62 .64
.66 .67, ru .45 .45 .47 .46, zh .33 .32 .32 .31.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
from tqdm.auto import tqdm

from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet, load_facts
from lrp2_interp.files import write_json
from lrp2_interp.models.builders import bert_tokenizer, bpe_tokenizer
from lrp2_interp.organism.corpus import PIVOT, BridgeConfig, Corpus, FactSplit, build_corpus

OrganismKind = Literal["causal", "masked"]
FORMAT_VERSION = 1


def default_facts_root() -> Path:
    """The shipped ``data/facts`` (package data in a wheel; see :func:`lrp2_interp.facts.shipped_facts_root`)."""
    from lrp2_interp.facts import shipped_facts_root

    return shipped_facts_root()


def default_cache_dir() -> Path:
    env = os.environ.get("LRP2_CACHE")
    base = Path(env).expanduser() if env else Path("~/.cache/lrp2_interp").expanduser()
    return base / "organisms"


@dataclass(frozen=True)
class OrganismConfig:
    """Everything that determines the organism (its hash names the cache folder)."""

    facts_root: str | None = None  # None: the repository's data/facts
    languages: tuple[str, ...] = ("en", "fr", "es", "nl", "ru", "zh")
    relations: tuple[str, ...] | None = None  # None: every relation present
    max_facts_per_relation: int | None = None
    kind: OrganismKind = "causal"
    n_layers: int = 4
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    max_positions: int = 96
    vocab_size: int = 2000
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    dropout: float = 0.0
    mask_object_prob: float = 0.5  # masked kind: mask the whole object span in this share of fact lines
    mask_prob: float = 0.15  # masked kind: random token masking otherwise
    seen_fraction: float = 0.5
    bridge: BridgeConfig = field(default_factory=lambda: BridgeConfig(mix_entities=True))
    seed: int = 0

    def facts_path(self) -> Path:
        return Path(self.facts_root).expanduser() if self.facts_root else default_facts_root()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["facts_root"] = str(self.facts_path())
        return d

    @classmethod
    def from_dict(cls, d: dict) -> OrganismConfig:
        d = dict(d)
        d["bridge"] = BridgeConfig(**d.get("bridge", {}))
        for key in ("languages", "relations"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)


@dataclass(frozen=True)
class OrganismInfo:
    """What was trained: config, where it lives, the per-language fact splits, cost and loss."""

    config: OrganismConfig
    directory: Path
    splits: dict[str, FactSplit]
    train_seconds: float
    final_loss: float
    n_lines: int
    n_tokens: int
    n_steps: int
    corpus_counts: dict[str, int]
    data_digest: str


@dataclass(frozen=True)
class OrganismFacts:
    """Seen and held-out facts of one non-English language (English twins in the same sets)."""

    language: str
    seen: FactSet
    held_out: FactSet


def load_organism_facts(config: OrganismConfig) -> FactSet:
    return load_facts(
        config.facts_path(),
        list(config.languages),
        list(config.relations) if config.relations else None,
        max_facts_per_relation=config.max_facts_per_relation,
        seed=config.seed,
    )


def _data_digest(facts: FactSet) -> str:
    h = hashlib.sha256()
    for lang in facts.languages:
        for rel in facts.relations:
            if (lang, rel) in facts.templates:
                h.update(f"{lang}|{rel}|{facts.template(lang, rel).template}\n".encode())
            for f in facts.facts_of(lang, rel):
                h.update(f"{f.lineid}|{f.sub_label}|{f.obj_label}|{'|'.join(f.obj_aliases)}\n".encode())
    return h.hexdigest()[:16]


def config_hash(config: OrganismConfig, facts: FactSet | None = None) -> str:
    """Hash of the config and of the fact data it is trained on."""
    facts = facts if facts is not None else load_organism_facts(config)
    payload = json.dumps({"v": FORMAT_VERSION, "config": config.to_dict(), "data": _data_digest(facts)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def organism_dir(config: OrganismConfig, cache_dir: str | Path | None = None, facts: FactSet | None = None) -> Path:
    return Path(cache_dir or default_cache_dir()) / config_hash(config, facts)


# ---------------------------------------------------------------- tokenizer and model
def train_organism_tokenizer(kind: OrganismKind, texts: Sequence[str], vocab_size: int):
    """A shared sub-word tokenizer over all languages (byte-level BPE / WordPiece).

    The causal tokenizer prepends ``<s>`` (so ``LanguageModel.encode`` sees the same
    BOS-first sequences as training and probing).
    """
    if kind == "masked":
        return bert_tokenizer(texts, vocab_size)
    return bpe_tokenizer(texts, vocab_size, prepend_bos=True)


def _hf_model(config: OrganismConfig, tokenizer):
    from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel

    vocab = len(tokenizer)
    if config.kind == "masked":
        cfg = BertConfig(
            vocab_size=vocab,
            hidden_size=config.d_model,
            num_hidden_layers=config.n_layers,
            num_attention_heads=config.n_heads,
            intermediate_size=config.d_mlp,
            max_position_embeddings=config.max_positions,
            hidden_dropout_prob=config.dropout,
            attention_probs_dropout_prob=config.dropout,
            pad_token_id=tokenizer.pad_token_id,
            architectures=["BertForMaskedLM"],
        )
        return BertForMaskedLM(cfg)
    cfg = GPT2Config(
        vocab_size=vocab,
        n_embd=config.d_model,
        n_layer=config.n_layers,
        n_head=config.n_heads,
        n_inner=config.d_mlp,
        n_positions=config.max_positions,
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        architectures=["GPT2LMHeadModel"],
    )
    return GPT2LMHeadModel(cfg)


# ---------------------------------------------------------------- training data
@dataclass(frozen=True)
class _Encoded:
    ids: list[list[int]]
    obj_tokens: list[list[int]]  # positions of the object's tokens (masked kind)


def _encode(corpus: Corpus, tokenizer, config: OrganismConfig) -> _Encoded:
    enc = tokenizer(
        corpus.texts,
        add_special_tokens=True,
        return_offsets_mapping=True,
        truncation=True,
        max_length=config.max_positions - 1,
    )
    ids, objs = [], []
    eos = tokenizer.eos_token_id
    for row, (line, offsets) in enumerate(zip(corpus.lines, enc["offset_mapping"])):
        toks = list(enc["input_ids"][row])
        if config.kind == "causal" and eos is not None:
            toks.append(eos)
        span = line.obj_span
        pos = [] if span is None else [i for i, (a, b) in enumerate(offsets) if b > a and a < span[1] and b > span[0]]
        ids.append(toks)
        objs.append(pos)
    return _Encoded(ids, objs)


def _batch(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


def _mask_batch(
    ids: torch.Tensor,
    attn: torch.Tensor,
    objs: list[list[int]],
    tokenizer,
    config: OrganismConfig,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MLM inputs/labels: whole-object masking for some fact lines, random 15% otherwise."""
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    maskable = attn.bool() & ~torch.isin(ids, special)
    chosen = (torch.rand(ids.shape, generator=gen) < config.mask_prob) & maskable
    use_obj = torch.rand(len(objs), generator=gen) < config.mask_object_prob
    for i, pos in enumerate(objs):
        if pos and use_obj[i]:
            chosen[i] = False
            chosen[i, pos] = True
    empty = ~chosen.any(1) & maskable.any(1)
    for i in empty.nonzero().flatten().tolist():  # at least one prediction per row
        cands = maskable[i].nonzero().flatten()
        chosen[i, cands[torch.randint(len(cands), (1,), generator=gen)]] = True
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    inputs = ids.clone()
    inputs[chosen] = tokenizer.mask_token_id
    return inputs, labels


def _bucketed_batches(rows: list[list[int]], batch_size: int, gen: torch.Generator) -> list[list[int]]:
    """One epoch of batches: shuffled, then sorted by length inside windows of 32 batches
    (less padding), batch order shuffled again.  Deterministic for the generator state."""
    order = torch.randperm(len(rows), generator=gen).tolist()
    window = 32 * batch_size
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: len(rows[i]))
        batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]


def _train(model, data: _Encoded, tokenizer, config: OrganismConfig, progress: bool) -> tuple[float, int]:
    gen = torch.Generator().manual_seed(config.seed)
    n = len(data.ids)
    steps_per_epoch = sum(
        math.ceil(min(32 * config.batch_size, n - s) / config.batch_size) for s in range(0, n, 32 * config.batch_size)
    )
    total = steps_per_epoch * config.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.98))
    warm = max(1, int(config.warmup_fraction * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))
    )
    pad = tokenizer.pad_token_id
    model.train()
    ema, step = float("nan"), 0
    bar = tqdm(total=total, desc="train organism", disable=not progress)
    for _ in range(config.epochs):
        for idx in _bucketed_batches(data.ids, config.batch_size, gen):
            ids, attn = _batch([data.ids[i] for i in idx], pad)
            if config.kind == "masked":
                inputs, labels = _mask_batch(ids, attn, [data.obj_tokens[i] for i in idx], tokenizer, config, gen)
            else:
                inputs, labels = ids, ids.masked_fill(attn == 0, -100)
            loss = model(input_ids=inputs, attention_mask=attn, labels=labels).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            ema = loss.item() if math.isnan(ema) else 0.95 * ema + 0.05 * loss.item()
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{ema:.3f}")
    bar.close()
    model.eval()
    return ema, step


# ---------------------------------------------------------------- public API
def train_organism(
    config: OrganismConfig = OrganismConfig(),
    cache_dir: str | Path | None = None,
    *,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Train (or reuse) the organism; return its folder (``save_pretrained`` + ``organism.json``).

    The folder is written under a temporary name and renamed when complete.
    Uses the caller's torch thread settings; deterministic for a seed on one machine.
    """
    facts = load_organism_facts(config)
    target = organism_dir(config, cache_dir, facts)
    if (target / "organism.json").is_file() and not force:
        return target
    corpus = build_corpus(facts, config.languages, config.seen_fraction, config.seed, config.bridge)
    t0 = time.perf_counter()
    tokenizer = train_organism_tokenizer(config.kind, corpus.texts, config.vocab_size)
    data = _encode(corpus, tokenizer, config)
    torch.manual_seed(config.seed)
    model = _hf_model(config, tokenizer)
    loss, steps = _train(model, data, tokenizer, config, progress)
    seconds = time.perf_counter() - t0
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(
            tmp / "organism.json",
            {
                "format_version": FORMAT_VERSION,
                "config": config.to_dict(),
                "hash": target.name,
                "data_digest": _data_digest(facts),
                "corpus_digest": corpus.digest(),
                "splits": {
                    lang: {"seen": list(s.seen), "held_out": list(s.held_out)} for lang, s in corpus.splits.items()
                },
                "train_seconds": round(seconds, 2),
                "final_loss": loss,
                "n_steps": steps,
                "n_lines": len(corpus.lines),
                "n_tokens": sum(len(r) for r in data.ids),
                "corpus_counts": corpus.counts(),
                "torch_threads": torch.get_num_threads(),
            },
        )
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def read_organism_info(directory: str | Path) -> OrganismInfo:
    directory = Path(directory)
    path = directory / "organism.json"
    if not path.is_file():
        raise InputError("not an organism folder (no organism.json)", file=path)
    meta = json.loads(path.read_text(encoding="utf-8"))
    config = OrganismConfig.from_dict(meta["config"])
    splits = {lang: FactSplit(lang, tuple(s["seen"]), tuple(s["held_out"])) for lang, s in meta["splits"].items()}
    return OrganismInfo(
        config,
        directory,
        splits,
        float(meta["train_seconds"]),
        float(meta["final_loss"]),
        int(meta["n_lines"]),
        int(meta["n_tokens"]),
        int(meta["n_steps"]),
        dict(meta["corpus_counts"]),
        str(meta["data_digest"]),
    )


def load_organism(
    config: OrganismConfig = OrganismConfig(),
    cache_dir: str | Path | None = None,
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
):
    """``(LanguageModel, OrganismInfo)``; trains the organism first if it is not cached."""
    from lrp2_interp.models.loading import load_model

    directory = train_organism(config, cache_dir, progress=progress)
    return load_model(directory, device=device), read_organism_info(directory)


def organism_facts(info: OrganismInfo, facts: FactSet | None = None) -> dict[str, OrganismFacts]:
    """Per non-English language: its seen and held-out facts (each set keeps the English twins)."""
    facts = facts if facts is not None else load_organism_facts(info.config)
    if _data_digest(facts) != info.data_digest:
        raise InputError("the fact data changed since this organism was trained", file=facts.root)
    langs = lambda lang: [PIVOT, lang]  # noqa: E731
    out = {}
    for lang, split in info.splits.items():
        sub = FactSet(
            facts.root,
            tuple(langs(lang)),
            facts.relations,
            {k: v for k, v in facts.templates.items() if k[0] in langs(lang)},
            {k: v for k, v in facts.facts.items() if k[0] in langs(lang)},
            {k: v for k, v in facts.candidate_sets.items() if k[0] in langs(lang)},
        )
        out[lang] = OrganismFacts(lang, sub.restrict(split.seen), sub.restrict(split.held_out))
    return out


def with_overrides(config: OrganismConfig, **kw) -> OrganismConfig:
    """``dataclasses.replace`` that also accepts ``bridge_*`` keys for the bridge config."""
    bridge = {k[len("bridge_") :]: kw.pop(k) for k in list(kw) if k.startswith("bridge_")}
    if bridge:
        kw["bridge"] = replace(config.bridge, **bridge)
    return replace(config, **kw)
