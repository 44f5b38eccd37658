"""Language vectors: per layer, the mean over sentences of the mean token state.

``v_l^i = mean_s ( mean_{t in s} h_i(t) )`` with ``h_i`` read at
``blocks.{i}.hook_resid_post``, plus the same mean of the embedding output
(``blocks.0.hook_resid_pre``, the extra shift point ``layers.EMBEDDINGS``).

Which tokens enter the token mean (``tokens``):

* ``"real"`` (default): padding and special tokens ([CLS], [SEP], [MASK], BOS/EOS,
  PAD) are excluded: they carry no language identity and would otherwise pull
  every language's vector towards the same special-token states (a causal LM's
  BOS state is the same in every sentence of every language).  Sentences with no
  remaining token are skipped.
* ``"all"`` (the paper's "all tokens"): every non-padding token, special tokens
  included.

The default corpus is the probe prompts themselves (:func:`lrp2_interp.prompts.prompt_corpus`); any list
of sentences, a text file per language (one sentence a line) or a parallel
corpus (:mod:`lrp2_interp.corpus`) also works.  The corpus travels with the
vectors: a description, and per language its name, size and the sha256 of the
sentences used (``corpus_meta``).  Saved as safetensors plus a JSON sidecar
naming the model and its sizes, so vectors of another model are refused.
"""

from __future__ import annotations

import errno
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm.auto import tqdm

from lrp2_interp.errors import InputError
from lrp2_interp.files import atomic_path, iter_text_lines, write_json
from lrp2_interp.layers import EMBEDDINGS, check_shift_point
from lrp2_interp.models.loading import Batch, LanguageModel

TokenChoice = Literal["real", "all"]
TOKEN_CHOICES = ("real", "all")
EMBEDDINGS_KEY = "embeddings/"  # safetensors key prefix of the embedding-output vectors


@dataclass(frozen=True)
class LanguageVectors:
    """Per-language ``[n_layers, d_model]`` mean states of one model."""

    model_name: str
    n_layers: int
    d_model: int
    vectors: Mapping[str, torch.Tensor] = field(repr=False)  # lang -> [n_layers, d_model]
    corpus: Mapping[str, str] = field(default_factory=dict)  # lang -> description
    n_sentences: Mapping[str, int] = field(default_factory=dict)
    fingerprint: str | None = None  # LanguageModel.fingerprint of the model the vectors come from
    embeddings: Mapping[str, torch.Tensor] = field(default_factory=dict, repr=False)  # lang -> [d_model]
    tokens: str = "real"  # which tokens were averaged (see the module docstring)
    corpus_meta: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # lang -> name, size, sha256
    path: str | None = field(default=None, compare=False)  # the .safetensors file they were loaded from

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted(self.vectors))

    def __getitem__(self, language: str) -> torch.Tensor:
        if language not in self.vectors:
            raise InputError(
                f"no language vector for '{language}' (have: {', '.join(self.languages)})", field="language"
            )
        return self.vectors[language]

    def provenance(self) -> dict[str, Any]:
        """What vectors computed in a run follow from (the results manifest's record of them): the model and
        its sizes, each language's corpus name and sentences (their sha256, the count when unknown), the tokens."""
        sentences = {g: self.corpus_meta.get(g, {}).get("sha256", self.n_sentences.get(g)) for g in self.languages}
        return vectors_provenance(
            self.model_name, self.fingerprint, (self.n_layers, self.d_model), self.corpus, sentences, self.tokens
        )

    def at(self, language: str, layer: int) -> torch.Tensor:
        """``[d_model]`` vector of ``language`` at a shift point (block index or ``layers.EMBEDDINGS``)."""
        check_shift_point(layer, self.n_layers)
        if layer != EMBEDDINGS:
            return self[language][layer]
        if language not in self.embeddings:
            self[language]  # unknown language: the usual error
            raise InputError(
                f"these language vectors have no embedding-output row for '{language}' "
                "(computed by an older version); recompute them",
                field="embeddings",
            )
        return self.embeddings[language]

    def check_model(self, lm: LanguageModel) -> None:
        """Refuse vectors computed for another model or of another size."""
        if self.n_layers != lm.n_layers:
            raise InputError(
                f"language vectors are for a model with {self.n_layers} layers, but '{lm.name}' has "
                f"{lm.n_layers} layers (vectors of another model)",
                file=self.path,
                field="n_layers",
            )
        if self.d_model != lm.d_model:
            raise InputError(
                f"language vectors are for a model with d_model {self.d_model}, but '{lm.name}' has "
                f"d_model {lm.d_model} (mismatched hidden size)",
                file=self.path,
                field="d_model",
            )
        if Path(self.model_name).name != Path(lm.name).name:
            raise InputError(
                f"language vectors were computed for model '{self.model_name}', not '{lm.name}'",
                file=self.path,
                field="model_name",
            )
        if self.fingerprint is not None and self.fingerprint != lm.fingerprint:
            raise InputError(
                f"language vectors were computed for another model named '{self.model_name}' (its weights differ)",
                file=self.path,
                field="fingerprint",
            )

    def save(self, path: str | Path) -> Path:
        from safetensors import SafetensorError
        from safetensors.torch import save_file

        path = vectors_path(path)
        with atomic_path(path) as tmp:
            tensors = dict(self.vectors)
            tensors.update({EMBEDDINGS_KEY + k: v for k, v in self.embeddings.items()})
            try:
                save_file({k: v.detach().cpu().contiguous().float() for k, v in tensors.items()}, str(tmp))
            except SafetensorError as err:  # e.g. a full disk: an OSError naming the file (files.atomic_path)
                raise OSError(errno.EIO, str(err).splitlines()[0] if str(err) else "write failed") from err
        write_json(
            path.with_suffix(".json"),
            {
                "model_name": self.model_name,
                "n_layers": self.n_layers,
                "d_model": self.d_model,
                "corpus": dict(self.corpus),
                "n_sentences": dict(self.n_sentences),
                "fingerprint": self.fingerprint,
                "tokens": self.tokens,
                "corpus_meta": {k: dict(v) for k, v in self.corpus_meta.items()},
            },
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> LanguageVectors:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = vectors_path(path)
        meta_path = path.with_suffix(".json")
        for p in (path, meta_path):
            if not p.is_file():
                raise InputError("language-vector file not found", file=p)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise InputError(f"malformed JSON ({err.msg})", file=meta_path, line=err.lineno) from None
        for key in ("model_name", "n_layers", "d_model"):
            if key not in meta:
                raise InputError("missing field", file=meta_path, field=key)
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise InputError(f"truncated or corrupt safetensors file ({err})", file=path) from None
        vectors = {k: v for k, v in tensors.items() if not k.startswith(EMBEDDINGS_KEY)}
        embeddings = {k[len(EMBEDDINGS_KEY) :]: v for k, v in tensors.items() if k.startswith(EMBEDDINGS_KEY)}
        for lang, v in vectors.items():
            if tuple(v.shape) != (meta["n_layers"], meta["d_model"]):
                raise InputError(
                    f"vector '{lang}' has shape {tuple(v.shape)}, expected ({meta['n_layers']}, {meta['d_model']})",
                    file=path,
                    field=lang,
                )
        for lang, v in embeddings.items():
            if tuple(v.shape) != (meta["d_model"],):
                raise InputError(
                    f"embedding vector '{lang}' has shape {tuple(v.shape)}, expected ({meta['d_model']},)",
                    file=path,
                    field=EMBEDDINGS_KEY + lang,
                )
        for key, v in tensors.items():
            check_finite_vector(v, key, file=path)
        return cls(
            meta["model_name"],
            int(meta["n_layers"]),
            int(meta["d_model"]),
            vectors,
            meta.get("corpus", {}),
            meta.get("n_sentences", {}),
            meta.get("fingerprint"),
            embeddings,
            meta.get("tokens", "real"),
            meta.get("corpus_meta", {}),
            str(path),
        )


def vectors_path(path: str | Path) -> Path:
    """The ``.safetensors`` file of language vectors given as ``V`` (``vectors --out V``), ``V.safetensors`` or
    ``V.json``: the path with its suffix replaced, as :meth:`LanguageVectors.save` writes it."""
    return Path(path).with_suffix(".safetensors")


def check_finite_vector(vector: torch.Tensor, name: str, *, file: str | Path | None = None) -> None:
    """Refuse a language vector holding NaN or infinity (every shift and ranking would silently be garbage)."""
    bad = ~torch.isfinite(vector)
    if bool(bad.any()):
        where = bad.nonzero()[0].tolist()
        raise InputError(
            f"language vector '{name}' holds {int(bad.sum())} non-finite value(s) (NaN or inf), first at index "
            f"{tuple(where)}; recompute the vectors",
            file=file,
            field=name,
        )


def read_sentences(path: str | Path, limit: int | None = None) -> list[str]:
    """One sentence per non-empty line of a UTF-8 text file."""
    path = Path(path)
    if not path.is_file():
        raise InputError("sentence file not found", file=path)
    lines = [ln.strip() for _, ln in iter_text_lines(path) if ln.strip()]  # refuses non-UTF-8 / over-long lines
    if not lines:
        raise InputError("sentence file is empty", file=path)
    return lines[:limit] if limit else lines


def check_tokens(tokens: str) -> str:
    if tokens not in TOKEN_CHOICES:
        raise InputError(f"tokens must be one of {TOKEN_CHOICES}, got {tokens!r}", field="tokens")
    return tokens


def token_mask(lm: LanguageModel, batch: Batch, tokens: TokenChoice = "real") -> torch.Tensor:
    """``[batch, pos]`` bool: the tokens averaged into a sentence state.

    ``"real"``: non-padding, non-special tokens; ``"all"``: every non-padding token.
    """
    if check_tokens(tokens) == "all":
        return batch.attention_mask.bool()
    return lm.real_token_mask(batch)


@torch.no_grad()
def mean_states(
    lm: LanguageModel,
    sentences: Sequence[str],
    *,
    batch_size: int = 32,
    progress: bool = False,
    fwd_hooks=None,
    tokens: TokenChoice = "real",
    embeddings: bool = False,
    hook_names: Sequence[str] | None = None,
    keep_empty: bool = False,
    float32: bool = False,
) -> torch.Tensor:
    """``[n_sentences, n_points, d_model]``: each sentence's mean token state at each hook point.

    The points are the block outputs (``[n_sentences, n_layers, d_model]``; with ``embeddings`` the
    embedding output first, i.e. rows in the paper's numbering: row k = paper layer k), or the hooks
    ``hook_names`` (e.g. ``mlp_out`` sites).  ``tokens`` picks the tokens (:func:`token_mask`); a
    sentence with none is dropped, or kept as a zero row with ``keep_empty`` (rows stay parallel).
    ``float32``: average in float32 (else in the model's dtype, then cast to float32).
    """
    if hook_names is None:
        hook_names = [lm.shift_point(i) for i in [EMBEDDINGS] * embeddings + list(range(lm.n_layers))]
    names = list(hook_names)
    out = []
    for start in tqdm(range(0, len(sentences), batch_size), disable=not progress, leave=False, desc="states"):
        batch = lm.encode(list(sentences[start : start + batch_size]))
        keep = token_mask(lm, batch, tokens).to(torch.float32 if float32 else lm.dtype)  # [b, pos]
        means: dict[int, torch.Tensor] = {}

        def grab(x: torch.Tensor, hook=None, k: int = 0, keep=keep, means=means) -> None:  # x: [b, pos, d]
            x = x.float() if float32 else x
            means[k] = (x * keep[..., None]).sum(1) / keep.sum(1, keepdim=True).clamp(min=1)

        hooks = [(name, partial(grab, k=k)) for k, name in enumerate(names)]
        lm.logits(batch, list(fwd_hooks or []) + hooks)
        states = torch.stack([means[k] for k in range(len(names))], dim=1)  # [b, n_points, d_model]
        out.append((states if keep_empty else states[keep.sum(1) > 0]).float().cpu())
    return torch.cat(out) if out else torch.empty(0, len(names), lm.d_model)


def sentences_sha256(sentences: Sequence[str]) -> str:
    """sha256 of the sentences as UTF-8 lines (each followed by a newline): what entered the vectors."""
    h = hashlib.sha256()
    for s in sentences:
        h.update(s.encode("utf-8") + b"\n")
    return h.hexdigest()


def vectors_provenance(
    model_name: str,
    fingerprint: str | None,
    sizes: tuple[int, int],
    corpus: Mapping[str, str],
    sentences: Mapping[str, Any],
    tokens: str,
) -> dict[str, Any]:
    """The provenance record of :meth:`LanguageVectors.provenance` (``sentences``: language -> sha256)."""
    return {
        "model": model_name,
        "fingerprint": fingerprint,
        "sizes": list(sizes),
        "languages": sorted(sentences),
        "corpus": dict(sorted(corpus.items())),
        "sentences": dict(sorted(sentences.items())),
        "tokens": tokens,
    }


def planned_provenance(
    lm: LanguageModel,
    sentences: Mapping[str, Sequence[str]],
    *,
    corpus: Mapping[str, str] | None = None,
    tokens: TokenChoice = "real",
) -> dict[str, Any]:
    """The provenance of ``compute_language_vectors(lm, sentences, corpus=corpus, tokens=tokens)`` before
    they are computed, so a results folder can be checked first (equal to the result's ``.provenance()``)."""
    desc = dict(corpus or dict.fromkeys(sentences, "user sentences"))
    shas = {lang: sentences_sha256(list(s)) for lang, s in sentences.items()}
    return vectors_provenance(lm.name, lm.fingerprint, (lm.n_layers, lm.d_model), desc, shas, tokens)


def compute_language_vectors(
    lm: LanguageModel,
    sentences: Mapping[str, Sequence[str]],
    *,
    corpus: Mapping[str, str] | None = None,
    batch_size: int = 32,
    progress: bool = True,
    tokens: TokenChoice = "real",
    corpus_meta: Mapping[str, Mapping[str, Any]] | None = None,
) -> LanguageVectors:
    """Language vectors of every language in ``sentences`` (lang -> list of sentences).

    ``tokens``: ``"real"`` (default, special tokens dropped) or ``"all"`` (the paper).
    ``corpus_meta``: extra per-language records (e.g. :meth:`ParallelCorpus.records
    <lrp2_interp.corpus.ParallelCorpus.records>`: file, file sha256); the name, the
    number of sentences and the sha256 of the sentences used are always recorded.
    """
    check_tokens(tokens)
    desc = dict(corpus or dict.fromkeys(sentences, "user sentences"))
    vectors, embeddings, counts, meta = {}, {}, {}, {}
    for lang, sents in sentences.items():
        if not sents:
            raise InputError(f"no sentences for language '{lang}'", field="sentences")
        states = mean_states(
            lm, list(sents), batch_size=batch_size, progress=progress, tokens=tokens, embeddings=True
        )  # [n, 1 + n_layers, d_model]
        if len(states) == 0:
            raise InputError(f"every sentence of '{lang}' is empty after removing special tokens", field="sentences")
        mean = states.mean(0)
        check_finite_vector(mean, lang, file=desc.get(lang))
        embeddings[lang], vectors[lang] = mean[0], mean[1:]
        counts[lang] = len(states)
        meta[lang] = {
            "name": desc.get(lang, "user sentences"),
            "n_sentences": len(sents),
            "n_used": len(states),
            "sha256": sentences_sha256(list(sents)),
            **dict((corpus_meta or {}).get(lang, {})),
        }
    return LanguageVectors(
        lm.name, lm.n_layers, lm.d_model, vectors, desc, counts, lm.fingerprint, embeddings, tokens, meta
    )
