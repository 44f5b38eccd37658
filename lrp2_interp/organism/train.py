"""Training the offline model organism: a small multilingual LM trained from scratch on facts.

No model hub is reachable offline, so the package's default model is trained here,
in minutes on a CPU, from an mLAMA-layout fact set (the repository's ``data/facts``)
with the experimenter in control of which facts each language sees:

* English sees every fact; each other language sees only ``seen_fraction`` of them
  (per relation, seeded); the *held-out* facts are the same in every non-English
  language and appear in English only -- the test of cross-lingual transfer.
* Bridging lines (:class:`~lrp2_interp.organism.training_corpus.BridgeConfig`) tie the
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
OrganismInfo)``, :func:`organism_facts` -> per language seen/held-out ``FactSet``; the
config, its cache key and the facts it reads are :mod:`lrp2_interp.organism.organism_config`.
The model config is :func:`lrp2_interp.models.builders.hf_config`'s (with the organism's
dropout) and batches are padded by :func:`lrp2_interp.models.builders.pad_rows`.

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

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet
from lrp2_interp.files import follow_umask, write_json
from lrp2_interp.models.builders import RandomModelConfig, bert_tokenizer, bpe_tokenizer, hf_config, pad_rows
from lrp2_interp.organism.organism_config import (
    FORMAT_VERSION,
    OrganismConfig,
    OrganismKind,
    data_digest,
    load_organism_facts,
    organism_dir,
)
from lrp2_interp.organism.training_corpus import PIVOT, Corpus, FactSplit, build_corpus

if TYPE_CHECKING:
    from lrp2_interp.models.loading import LanguageModel


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


# ---------------------------------------------------------------- tokenizer and model
def train_organism_tokenizer(kind: OrganismKind, texts: Sequence[str], vocab_size: int):
    """A shared sub-word tokenizer over all languages (byte-level BPE / WordPiece).

    The causal tokenizer prepends ``<s>`` (so ``LanguageModel.encode`` sees the same
    BOS-first sequences as training and probing).
    """
    if kind == "masked":
        return bert_tokenizer(texts, vocab_size)
    return bpe_tokenizer(texts, vocab_size, prepend_bos=True)


def _hf_model(config: OrganismConfig, tokenizer: Any) -> Any:
    """The untrained GPT-2 / BERT of ``config`` (call after seeding torch: the weights are drawn here)."""
    from transformers import BertForMaskedLM, GPT2LMHeadModel

    shape = RandomModelConfig(
        family="bert" if config.kind == "masked" else "gpt2",
        n_layers=config.n_layers,
        d_model=config.d_model,
        n_heads=config.n_heads,
        d_mlp=config.d_mlp,
        max_positions=config.max_positions,
    )
    cfg = hf_config(shape, len(tokenizer), tokenizer, dropout=config.dropout)
    return BertForMaskedLM(cfg) if config.kind == "masked" else GPT2LMHeadModel(cfg)


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
            ids, attn = pad_rows([data.ids[i] for i in idx], pad)
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
    config: OrganismConfig | None = None,
    cache_dir: str | Path | None = None,
    *,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Train (or reuse) the organism; return its folder (``save_pretrained`` + ``organism.json``).

    The folder is written under a temporary name and renamed when complete.
    Uses the caller's torch thread settings; deterministic for a seed on one machine.
    ``config`` defaults to ``OrganismConfig()``.
    """
    config = config if config is not None else OrganismConfig()
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
                "data_digest": data_digest(facts),
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
        follow_umask(tmp)  # the cached model is readable as any other file of the user's
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
    config: OrganismConfig | None = None,
    cache_dir: str | Path | None = None,
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[LanguageModel, OrganismInfo]:
    """``(LanguageModel, OrganismInfo)``; trains the organism first if it is not cached (default config if None)."""
    from lrp2_interp.models.loading import load_model

    directory = train_organism(config, cache_dir, progress=progress)
    return load_model(directory, device=device), read_organism_info(directory)


def organism_facts(info: OrganismInfo, facts: FactSet | None = None) -> dict[str, OrganismFacts]:
    """Per non-English language: its seen and held-out facts (each set keeps the English twins)."""
    facts = facts if facts is not None else load_organism_facts(info.config)
    if data_digest(facts) != info.data_digest:
        raise InputError("the fact data changed since this organism was trained", file=facts.root)
    langs = lambda lang: [PIVOT, lang]  # noqa: E731
    out = {}
    for lang, split in info.splits.items():
        sub = facts.select_languages(langs(lang))
        out[lang] = OrganismFacts(lang, sub.restrict(split.seen), sub.restrict(split.held_out))
    return out
