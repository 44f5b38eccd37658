"""A five-fact en/nl capital set and tiny models trained on it (shared by the causal and similarity tests)."""

from __future__ import annotations

import json
from pathlib import Path

from lrp2_interp.facts import FactSet, load_facts
from lrp2_interp.models.builders import RandomModelConfig, build_random_model
from lrp2_interp.models.loading import LanguageModel, load_model
from lrp2_interp.prompts import fact_sentences

CAPITALS = [
    (1, "France", "Frankrijk", "Paris"),
    (2, "Germany", "Duitsland", "Berlin"),
    (3, "Spain", "Spanje", "Madrid"),
    (4, "Italy", "Italie", "Rome"),
    (5, "Poland", "Polen", "Warsaw"),
]
TEMPLATES = {"en": "The capital of [X] is [Y] .", "nl": "De hoofdstad van [X] is [Y] ."}


def write_facts(root: Path, n: int = len(CAPITALS), reverse_nl: bool = False) -> FactSet:
    """en and nl, one relation (P36), the first ``n`` capitals; optionally the nl file in reverse order."""
    for lang, tpl in TEMPLATES.items():
        d = root / lang
        d.mkdir(parents=True)
        (d / "templates.jsonl").write_text(json.dumps({"relation": "P36", "template": tpl}) + "\n")
        rows = [
            {"lineid": i, "sub_label": en if lang == "en" else nl, "obj_label": obj} for i, en, nl, obj in CAPITALS[:n]
        ]
        rows = rows[::-1] if reverse_nl and lang == "nl" else rows
        (d / "P36.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_facts(root)


def capital_lm(family: str, facts: FactSet, directory: Path, n_layers: int) -> LanguageModel:
    """A tiny random model whose tokenizer was trained on the filled capital sentences."""
    corpus = fact_sentences(facts)
    d = build_random_model(
        RandomModelConfig(family=family, n_layers=n_layers), corpus, directory, tokenizer_vocab_size=300
    )
    return load_model(d)
