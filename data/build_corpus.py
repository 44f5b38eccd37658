#!/usr/bin/env python3
"""Build the sample parallel corpus ``data/corpus/templates/`` from the shipped facts' templates.

Every fact of ``data/facts`` is written as a full sentence in each language (its
relation's template with subject and object filled in), in the OPUS-style
``pair`` layout that :func:`lrp2_interp.corpus.load_corpus` reads::

    data/corpus/templates/{split}.{pair}.{lang}     e.g. train.en-fr.fr, train.en-fr.en

Pairs are English with each other language (codes in alphabetical order, as
OPUS writes them); the two sides of a pair are line-aligned (same facts, same
order: relation, then line id).  ``dev`` holds every fifth fact of each
relation, ``train`` the others.  The sentences are the facts themselves, so the
sample is for running the corpus path offline, not a substitute for OPUS-100.

    python data/build_corpus.py            # (re)write the files
    python data/build_corpus.py --check    # exit 1 if the files on disk differ from a fresh build
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lrp2_interp.facts import load_facts  # noqa: E402
from lrp2_interp.prompts import render_filled  # noqa: E402

FACTS = ROOT / "data" / "facts"
OUT = ROOT / "data" / "corpus" / "templates"
SOURCE = "en"


def sentences(facts, lang: str, split: str) -> list[str]:
    out = []
    for rel in facts.relations:
        tpl = facts.template(lang, rel).template
        for i, fact in enumerate(sorted(facts.facts_of(lang, rel), key=lambda f: f.lineid)):
            if (i % 5 == 4) == (split == "dev"):
                out.append(render_filled(tpl, fact.sub_label, fact.obj_label))
    return out


def build_files() -> dict[str, str]:
    """relative file name -> content."""
    facts = load_facts(FACTS).parallel()
    files = {}
    for lang in facts.languages:
        if lang == SOURCE:
            continue
        pair = "-".join(sorted((SOURCE, lang)))
        for split in ("train", "dev"):
            for side in (SOURCE, lang):
                files[f"{split}.{pair}.{side}"] = "".join(s + "\n" for s in sentences(facts, side, split))
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    files = build_files()
    if args.check:
        bad = [n for n, text in files.items() if not (OUT / n).is_file() or (OUT / n).read_text("utf-8") != text]
        extra = sorted(p.name for p in OUT.glob("*.*.*") if p.name not in files) if OUT.is_dir() else []
        for name in bad + extra:
            print(f"out of date: {OUT / name}")
        return 1 if bad or extra else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (OUT / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files to {OUT} ({sum(len(t.encode()) for t in files.values())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
