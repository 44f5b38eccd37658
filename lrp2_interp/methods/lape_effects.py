"""What language-specific neurons do: loss when deactivated, overlap with knowledge neurons, LRP2's effect.

* :func:`fact_corpus`: each fact as a filled sentence (the LAPE corpus and the loss corpus).
* :func:`language_loss`: mean per-token NLL of a language's sentences (causal: every
  next token; masked: the gold object's tokens at their masks).
* :func:`deactivation_table`: loss of every language with each language's neurons
  deactivated, next to a random control of the same per-layer sizes; LAPE's claim is
  that the diagonal (own language) rises most.
* :func:`knowledge_overlap`: language-specific vs knowledge neurons, with the overlap
  expected by chance (same per-layer sizes, independent positions).
* :func:`activation_shift`: activation probability of each language's neurons on
  language-l prompts without and with extra hooks (e.g. LRP2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from lrp2_interp.errors import InputError
from lrp2_interp.facts import FactSet
from lrp2_interp.methods.controls import random_mask_like
from lrp2_interp.methods.lape import (
    LanguageNeurons,
    activation_stats,
    scale_hooks,
)
from lrp2_interp.metrics import rate_counts
from lrp2_interp.models.loading import FwdHooks, LanguageModel
from lrp2_interp.probing.probe import sentence_logprobs
from lrp2_interp.prompts import causal_ids, fact_sentences, query_text, render_masked, starts_with_object


def fact_corpus(facts: FactSet, language: str) -> list[str]:
    """Every fact of ``language`` as its filled sentence (subject and gold object)."""
    return fact_sentences(facts, [language])


@torch.no_grad()
def language_loss(
    lm: LanguageModel, facts: FactSet, language: str, fwd_hooks: FwdHooks | None = None, *, batch_size: int = 32
) -> float:
    """Mean per-token NLL (nats) of ``language``'s facts (causal: sentences; masked: gold objects)."""
    if lm.kind == "causal":
        rows = [causal_ids(lm, s) for s in fact_corpus(facts, language)]
        lps, n_tok = [], []
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            lps.append(sentence_logprobs(lm, chunk, fwd_hooks))
            n_tok += [len(r) - 1 for r in chunk]
        return float(-torch.cat(lps).sum() / max(1, sum(n_tok)))
    total, count = 0.0, 0
    items = [(f, lm.token_ids(f.obj_label)) for f in facts.iter_facts(language)]
    for start in range(0, len(items), batch_size):
        part = items[start : start + batch_size]
        texts = [
            render_masked(facts.template(language, f.relation).template, f.sub_label, len(ids), lm.mask_token)
            for f, ids in part
        ]
        batch = lm.encode(texts)
        logprobs = torch.log_softmax(lm.logits(batch, fwd_hooks).float(), dim=-1)  # [b, pos, vocab]
        for row, (_, ids) in enumerate(part):
            pos = (batch.input_ids[row] == lm.mask_token_id).nonzero().flatten()[: len(ids)]
            total -= float(logprobs[row, pos, torch.tensor(ids[: len(pos)])].sum())
            count += len(pos)
    return total / max(1, count)


def deactivation_table(
    lm: LanguageModel,
    facts: FactSet,
    neurons: LanguageNeurons,
    languages: Sequence[str] | None = None,
    *,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (deactivated set, evaluated language): loss, baseline loss and the increase.

    ``control`` is ``"lape"`` for the language's neurons and ``"random"`` for random
    neurons of the same per-layer counts.
    """
    langs = list(languages or neurons.languages)
    base = {lang: language_loss(lm, facts, lang) for lang in langs}
    rows = []
    for k, off in enumerate(langs):
        mask = neurons.mask(off)
        for control, m in (("lape", mask), ("random", random_mask_like(mask, seed + k))):
            hooks = scale_hooks(lm, m, 0.0)
            for lang in langs:
                loss = language_loss(lm, facts, lang, hooks) if hooks else base[lang]
                rows.append(
                    {
                        "deactivated": off,
                        "control": control,
                        "n_neurons": int(m.sum()),
                        "language": lang,
                        "loss": loss,
                        "base_loss": base[lang],
                        "delta": loss - base[lang],
                    }
                )
    return pd.DataFrame(rows)


def own_language_margin(table: pd.DataFrame, control: str = "lape") -> pd.DataFrame:
    """Per deactivated language: loss increase on itself, mean increase on the others, and the margin."""
    t = table[table["control"] == control]
    rows = []
    for off, g in t.groupby("deactivated", sort=False):
        own = float(g.loc[g["language"] == off, "delta"].mean())
        others = float(g.loc[g["language"] != off, "delta"].mean()) if (g["language"] != off).any() else float("nan")
        rows.append(
            {
                "deactivated": off,
                "control": control,
                "n_neurons": int(g["n_neurons"].iloc[0]),
                "own_delta": own,
                "others_delta": others,
                "margin": own - others,
            }
        )
    return pd.DataFrame(rows)


def _mask_of(x, n_layers: int, d_mlp: int) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.bool()
    if hasattr(x, "as_mask"):
        return x.as_mask(n_layers, d_mlp).bool()
    m = torch.zeros(n_layers, d_mlp, dtype=torch.bool)
    for layer, i in x:
        m[int(layer), int(i)] = True
    return m


def knowledge_overlap(neurons: LanguageNeurons, knowledge: Mapping[str, object]) -> pd.DataFrame:
    """Language-specific neurons of every language vs each knowledge-neuron set.

    ``knowledge``: label -> a ``NeuronSet``, a ``[n_layers, d_mlp]`` bool mask or
    ``(layer, neuron)`` pairs.  ``expected`` is the chance overlap with the same
    per-layer sizes: ``sum_i |LS_i| |KN_i| / d_mlp``.
    """
    n_layers, d_mlp = neurons.entropy.shape
    rows = []
    for label, kn in knowledge.items():
        k = _mask_of(kn, n_layers, d_mlp)
        for lang in neurons.languages:
            ls = neurons.mask(lang)
            shared = int((ls & k).sum())
            expected = float((ls.sum(1).double() * k.sum(1).double()).sum() / d_mlp)
            rows.append(
                {
                    "knowledge": label,
                    "language": lang,
                    "n_language_specific": int(ls.sum()),
                    "n_knowledge": int(k.sum()),
                    "shared": shared,
                    "expected": expected,
                    "share_of_knowledge": float(rate_counts(shared, int(k.sum()))),
                }
            )
    return pd.DataFrame(rows)


def activation_shift(
    lm: LanguageModel, neurons: LanguageNeurons, sentences: Sequence[str], hooks: FwdHooks, *, batch_size: int = 32
) -> pd.DataFrame:
    """Mean activation probability of each language's neurons on ``sentences``, without and with ``hooks``.

    Hooks that change the FFN activations themselves are seen by the measurement
    (the probabilities are read at ``mlp.hook_pre`` after upstream hooks ran).
    """
    if not sentences:
        raise InputError("no sentences to measure activations on", field="sentences")
    before = activation_stats(lm, {"x": sentences}, batch_size=batch_size).probs[..., 0]  # [L, D]
    after = activation_stats(lm, {"x": sentences}, batch_size=batch_size, fwd_hooks=hooks).probs[..., 0]
    rows = []
    for lang in neurons.languages:
        m = neurons.mask(lang)
        for layer in range(m.shape[0]):
            if m[layer].any():
                rows.append(
                    {
                        "neurons_of": lang,
                        "layer": layer,
                        "n_neurons": int(m[layer].sum()),
                        "p_before": float(before[layer][m[layer]].mean()),
                        "p_after": float(after[layer][m[layer]].mean()),
                    }
                )
    out = pd.DataFrame(rows, columns=["neurons_of", "layer", "n_neurons", "p_before", "p_after"])
    out["change"] = out["p_after"] - out["p_before"]
    return out


def shift_summary(shift: pd.DataFrame) -> pd.DataFrame:
    """Per language set: neuron-weighted mean activation probability before/after and the change."""
    rows = []
    for lang, g in shift.groupby("neurons_of", sort=False):
        w = g["n_neurons"].to_numpy(float)
        rows.append(
            {
                "neurons_of": lang,
                "n_neurons": int(w.sum()),
                "p_before": float(np.average(g["p_before"], weights=w)),
                "p_after": float(np.average(g["p_after"], weights=w)),
            }
        )
    out = pd.DataFrame(rows, columns=["neurons_of", "n_neurons", "p_before", "p_after"])
    out["change"] = out["p_after"] - out["p_before"]
    return out


def knowledge_neuron_masks(
    lm: LanguageModel, facts: FactSet, languages: Sequence[str], *, max_facts: int = 10, config=None
) -> dict[str, torch.Tensor]:
    """Per language: the union of the knowledge neurons (Dai et al.) of its first ``max_facts`` facts.

    Integrated gradients as in :mod:`lrp2_interp.attribution.attribute`, selection with
    :func:`lrp2_interp.neurons.neuron_selection.select_neurons` (default thresholds); causal templates
    that start with the object are skipped.
    """
    from lrp2_interp.attribution.attribute import AttributionConfig, attribute_many
    from lrp2_interp.neurons.neuron_config import NeuronConfig
    from lrp2_interp.neurons.neuron_selection import select_neurons

    cfg = config or AttributionConfig()
    out = {}
    for lang in languages:
        prompts, targets = [], []
        for f in facts.iter_facts(lang):
            tpl = facts.template(lang, f.relation).template
            if lm.kind == "causal" and starts_with_object(tpl):
                continue
            prompts.append(query_text(lm, tpl, f.sub_label))
            targets.append(f.obj_label)
            if len(prompts) >= max_facts:
                break
        mask = torch.zeros(lm.n_layers, lm.d_mlp, dtype=torch.bool)
        for res in attribute_many(lm, prompts, targets, cfg, progress=False):
            mask |= select_neurons(res, NeuronConfig()).as_mask(lm.n_layers, lm.d_mlp).bool()
        out[lang] = mask
    return out
