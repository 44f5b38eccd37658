"""Logit lens per layer (Wendler et al. 2024, "Do Llamas Work in English?"): English vs language-l answer.

Each layer's residual stream ``blocks.{i}.hook_resid_post`` at the query position is
decoded with the model's own head (:func:`decode_residual`: causal LMs the final norm
``ln_final`` then the unembedding; masked LMs the HF MLM head, e.g. BERT's
transform + decoder), so the last layer gives the model's own output.  For every
fact in language l the query is the probe prompt (causal: the text before the
object, last position; masked: one mask, its position) and two tokens are read:
the first token of the gold object's label in language l, and the first token of
its label in the source language (``source``, English by default), as it would fill
``[Y]`` with the template's own spacing (:func:`~lrp2_interp.prompts.gold_query`).  Facts whose two first
tokens coincide are flagged (``same_token``) and left out of :func:`lens_curve` by
default, as they cannot tell the languages apart.  Causal templates that start with
the object have no prompt to read and are skipped.

Extra ``fwd_hooks`` (e.g. LRP2's) run before the read-out hooks, so ``with LRP2``
curves see the shifted stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import pandas as pd
import torch

from lrp2_interp.drawing import draw_lines
from lrp2_interp.errors import InputError
from lrp2_interp.fact_files import OBJECT, Fact
from lrp2_interp.facts import FactSet
from lrp2_interp.models.loading import FwdHooks, LanguageModel
from lrp2_interp.prompts import gold_query, render_masked, render_prefix


def decode_residual(lm: LanguageModel, resid: torch.Tensor) -> torch.Tensor:
    """Logits ``[..., vocab]`` of residual states ``[..., d_model]`` through the model's final norm and head."""
    model = lm.bridge.original_model
    if lm.kind == "masked":
        head = getattr(model, "cls", None) or getattr(model, "lm_head", None)
        if head is None:
            raise InputError(f"no MLM head found on '{lm.name}' (looked for .cls and .lm_head)", field="model")
        return head(resid)
    logits = lm.bridge.unembed(lm.bridge.ln_final(resid))
    cap = getattr(getattr(model, "config", None), "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


@dataclass(frozen=True)
class LensQuery:
    relation: str
    lineid: int
    text: str  # what the model reads
    target_token: int  # first token of the language-l label
    source_token: int  # first token of the source language's label
    target_label: str
    source_label: str


def _first_gold_token(lm: LanguageModel, template: str, fact: Fact, label: str) -> int:
    """First token of ``label`` where it fills ``[Y]`` of ``template`` for ``fact``: the one query builder's
    (:func:`~lrp2_interp.prompts.gold_query`) gold token, with the template's own spacing before ``[Y]``."""
    return gold_query(lm, template, replace(fact, obj_label=label), "first").gold[0]


def lens_queries(lm: LanguageModel, facts: FactSet, language: str, source: str = "en") -> list[LensQuery]:
    """One query per fact of ``language`` that has a counterpart in ``source`` (same line id)."""
    out = []
    for rel in facts.relations:
        src = {f.lineid: f for f in facts.facts_of(source, rel)}
        tpl = facts.template(language, rel).template if facts.facts_of(language, rel) else ""
        for f in facts.facts_of(language, rel):
            if f.lineid not in src or not lm.token_ids(f.obj_label) or not lm.token_ids(src[f.lineid].obj_label):
                continue
            en_label = src[f.lineid].obj_label
            if lm.kind == "masked":
                text = render_masked(tpl, f.sub_label, 1, lm.mask_token)
            else:
                if tpl.strip().startswith(OBJECT) or not render_prefix(tpl, f.sub_label):
                    continue
                text = render_prefix(tpl, f.sub_label)
            t_tok, s_tok = _first_gold_token(lm, tpl, f, f.obj_label), _first_gold_token(lm, tpl, f, en_label)
            out.append(LensQuery(rel, f.lineid, text, t_tok, s_tok, f.obj_label, en_label))
    return out


@torch.no_grad()
def logit_lens(
    lm: LanguageModel,
    facts: FactSet,
    language: str,
    *,
    source: str = "en",
    fwd_hooks: FwdHooks | None = None,
    condition: str = "baseline",
    batch_size: int = 16,
) -> pd.DataFrame:
    """Long table: one row per (fact, layer) with ``p_target`` (language-l label) and ``p_source`` (the ``source`` label)."""
    queries = lens_queries(lm, facts, language, source)
    if not queries:
        raise InputError(
            f"no fact of '{language}' can be read with the logit lens (no prompt before the object "
            f"or no counterpart in '{source}')",
            field="language",
        )
    rows = []
    for start in range(0, len(queries), batch_size):
        chunk = queries[start : start + batch_size]
        batch = lm.encode([q.text for q in chunk])
        if lm.kind == "masked":
            pos = (batch.input_ids == lm.mask_token_id).int().argmax(1)  # [b]
        else:
            pos = batch.attention_mask.sum(1) - 1  # [b] last real token
        rows_idx = torch.arange(len(chunk), device=batch.input_ids.device)
        states: dict[int, torch.Tensor] = {}

        def grab(x: torch.Tensor, hook=None, layer: int = 0, states=states, rows_idx=rows_idx, pos=pos) -> None:
            states[layer] = x[rows_idx, pos]

        hooks: FwdHooks = [(lm.resid_post(i), partial(grab, layer=i)) for i in range(lm.n_layers)]
        lm.logits(batch, list(fwd_hooks or []) + hooks)
        t_tok = torch.tensor([q.target_token for q in chunk], device=rows_idx.device)
        s_tok = torch.tensor([q.source_token for q in chunk], device=rows_idx.device)
        for layer in range(lm.n_layers):
            probs = torch.softmax(decode_residual(lm, states[layer]).float(), dim=-1)  # [b, vocab]
            p_t, p_s = probs[rows_idx, t_tok].tolist(), probs[rows_idx, s_tok].tolist()
            for q, pt, ps in zip(chunk, p_t, p_s):
                rows.append(
                    {
                        "condition": condition,
                        "language": language,
                        "source": source,
                        "relation": q.relation,
                        "lineid": q.lineid,
                        "layer": layer,
                        "p_target": pt,
                        "p_source": ps,
                        "same_token": q.target_token == q.source_token,
                    }
                )
    return pd.DataFrame(rows)


def lens_curve(table: pd.DataFrame | Sequence[pd.DataFrame], *, include_same_token: bool = False) -> pd.DataFrame:
    """Mean probability per (condition, layer, which label): the table :func:`plot_lens` draws.

    ``table``: :func:`logit_lens`'s table, or several of them (e.g. ``baseline`` and ``lrp2``).
    """
    table = _one_table(table)
    t = table if include_same_token else table[~table["same_token"]]
    if t.empty:
        raise InputError(
            "every fact has the same first token in both languages; nothing to compare "
            "(pass include_same_token=True to plot them anyway)",
            field="same_token",
        )
    lang = str(t["language"].iloc[0])
    source = str(t["source"].iloc[0]) if "source" in t.columns else "en"
    long = t.melt(
        id_vars=["condition", "layer"], value_vars=["p_target", "p_source"], var_name="label", value_name="probability"
    )
    long["label"] = long["label"].map({"p_target": f"{lang} label", "p_source": f"{source} label"})
    return long.groupby(["condition", "layer", "label"], as_index=False)["probability"].mean()


def _one_table(table: pd.DataFrame | Sequence[pd.DataFrame]) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table
    tables = list(table)
    if not tables:
        raise InputError("no logit-lens table given", field="table")
    return pd.concat(tables, ignore_index=True)


def draw_lens(
    table: pd.DataFrame | Sequence[pd.DataFrame],
    ax: Any = None,
    *,
    title: str | None = None,
    include_same_token: bool = False,
) -> Any:
    """Mean probability of the source vs the language-l label's first token per layer (line style: condition).

    ``table``: :func:`logit_lens`'s table or several (one per condition); returns the Axes.
    """
    table = _one_table(table)
    curve = lens_curve(table, include_same_token=include_same_token)
    n = table.loc[include_same_token | ~table["same_token"], ["relation", "lineid"]].drop_duplicates().shape[0]
    return draw_lines(
        curve,
        "layer",
        "probability",
        "label",
        ax,
        title=title or f"Logit lens, {table['language'].iloc[0]} prompts ({n} facts)",
        style="condition",
        ylabel="mean probability of the first token",
    )


def plot_lens(table: pd.DataFrame, path, *, title: str | None = None, include_same_token: bool = False):
    """Line plot: probability of the source vs the language-l label per layer, per condition."""
    from lrp2_interp.plots import line_plot

    curve = lens_curve(table, include_same_token=include_same_token)
    n = table.loc[include_same_token | ~table["same_token"], ["relation", "lineid"]].drop_duplicates().shape[0]
    return line_plot(
        curve,
        "layer",
        "probability",
        "label",
        path,
        title or f"logit lens, {table['language'].iloc[0]} prompts ({n} facts)",
        style="condition",
        ylabel="mean probability of the first token",
    )
