"""Parallel corpora in one-sentence-per-line layouts (OPUS-100, FLORES, flat), for language vectors.

The paper computes language vectors from about 10k OPUS-100 sentences per
language.  :func:`load_corpus` reads such a corpus from a folder in one of these
layouts (``{lang}`` is the language code, or ``codes[lang]`` when given, e.g.
``{"fr": "fra_Latn"}`` for FLORES-200; ``{pair}`` the two codes of source and
language joined by ``-``, in either order, OPUS's being alphabetical)::

    layout     file of language l                   example
    --------   ----------------------------------   --------------------------------------
    flat       {lang}.txt                           fr.txt
    pair       {split}.{pair}.{lang}                train.en-fr.fr
    opus100    {pair}/opus.{pair}-{split}.{lang}    en-fr/opus.en-fr-train.fr  (supervised/)
    flores     {split}/{lang}.{split}               dev/fra_Latn.dev

``layout="auto"`` takes the first layout in which every requested language has a
file; any other string containing ``{lang}`` is used as a pattern itself.  In
the pair layouts the source language (English) is read from its side of the
first other language's pair (or of ``source_pair``).  Every non-empty line,
stripped, is a sentence (vectors do not need the sides aligned); ``limit``
keeps the first ``limit`` of them.

A :class:`ParallelCorpus` records where each language's sentences came from:
:meth:`~ParallelCorpus.records` (corpus name, file, its size and sha256, the
number of lines used) is what :func:`~lrp2_interp.lrp2.vectors.compute_language_vectors`
stores with the vectors (``corpus_meta``).  ``data/corpus/templates`` is a small
sample in the ``pair`` layout built from the shipped facts (``data/build_corpus.py``),
so the loader runs offline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrp2_interp.errors import InputError

LAYOUTS: dict[str, str] = {
    "flat": "{lang}.txt",
    "pair": "{split}.{pair}.{lang}",
    "opus100": "{pair}/opus.{pair}-{split}.{lang}",
    "flores": "{split}/{lang}.{split}",
}


@dataclass(frozen=True)
class ParallelCorpus:
    """Sentences per language read from one corpus folder, with the provenance of each file."""

    name: str
    root: Path
    layout: str  # a LAYOUTS key or a custom pattern
    split: str
    sentences: Mapping[str, tuple[str, ...]] = field(repr=False)  # lang -> sentences used
    files: Mapping[str, Path] = field(default_factory=dict)  # lang -> file read
    n_lines: Mapping[str, int] = field(default_factory=dict)  # lang -> non-empty lines in the file
    file_sha256: Mapping[str, str] = field(default_factory=dict)  # lang -> sha256 of the file's bytes
    file_bytes: Mapping[str, int] = field(default_factory=dict)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.sentences)

    def describe(self) -> dict[str, str]:
        """lang -> one-line description (the vectors' ``corpus`` field)."""
        return {
            lang: f"{self.name}: {self._rel(lang)} ({len(s)} of {self.n_lines[lang]} lines)"
            for lang, s in self.sentences.items()
        }

    def records(self) -> dict[str, dict[str, Any]]:
        """lang -> corpus name, layout, split, file (relative to the root), bytes, sha256, lines in file / used."""
        return {
            lang: {
                "corpus": self.name,
                "layout": self.layout,
                "split": self.split,
                "file": self._rel(lang),
                "file_bytes": self.file_bytes[lang],
                "file_sha256": self.file_sha256[lang],
                "n_lines": self.n_lines[lang],
                "n_used": len(s),
            }
            for lang, s in self.sentences.items()
        }

    def _rel(self, lang: str) -> str:
        return self.files[lang].relative_to(self.root).as_posix()


def _candidates(pattern: str, code: str, split: str, pair_codes: Sequence[tuple[str, str]]) -> list[str]:
    if "{pair}" not in pattern:
        return [pattern.format(lang=code, split=split)]
    return [pattern.format(lang=code, split=split, pair=f"{a}-{b}") for x, y in pair_codes for a, b in ((x, y), (y, x))]


def _resolve(
    root: Path,
    pattern: str,
    languages: Sequence[str],
    split: str,
    source: str,
    source_pair: str | None,
    codes: Mapping[str, str],
) -> dict[str, Path] | None:
    """lang -> existing file under ``pattern``, or None if some language has none."""
    code = lambda lang: codes.get(lang, lang)  # noqa: E731
    others = [lang for lang in languages if lang != source]
    out = {}
    for lang in languages:
        if lang == source:
            partners = [source_pair] if source_pair else others
            pair_codes = [(code(source), code(p)) for p in partners]
        else:
            pair_codes = [(code(source), code(lang))]
        hit = next(
            (root / rel for rel in _candidates(pattern, code(lang), split, pair_codes) if (root / rel).is_file()), None
        )
        if hit is None:
            return None
        out[lang] = hit
    return out


def _read(path: Path, limit: int | None) -> tuple[tuple[str, ...], int, str, int]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError("not UTF-8 text", file=path, line=line) from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputError("corpus file is empty", file=path)
    return tuple(lines[:limit] if limit else lines), len(lines), hashlib.sha256(data).hexdigest(), len(data)


def load_corpus(
    root: str | Path,
    languages: Sequence[str],
    *,
    layout: str = "auto",
    split: str = "train",
    source: str = "en",
    source_pair: str | None = None,
    limit: int | None = None,
    codes: Mapping[str, str] | None = None,
    name: str | None = None,
) -> ParallelCorpus:
    """Read the sentences of ``languages`` from the corpus folder ``root`` (see the module docstring).

    ``layout``: ``"auto"``, a :data:`LAYOUTS` key or a pattern with ``{lang}``
    (and optionally ``{split}``, ``{pair}``); ``limit``: first N sentences per
    language (the paper: ~10k); ``name``: recorded name (default: the folder name).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError("corpus folder not found", file=root)
    if not languages:
        raise InputError("no languages requested", field="languages")
    if limit is not None and limit < 1:
        raise InputError(f"limit must be >= 1, got {limit}", field="limit")
    if layout == "auto":
        tried = list(LAYOUTS.items())
    elif layout in LAYOUTS:
        tried = [(layout, LAYOUTS[layout])]
    elif "{lang}" in layout:
        tried = [(layout, layout)]
    else:
        raise InputError(
            f"unknown layout {layout!r}: use 'auto', one of {sorted(LAYOUTS)} or a pattern containing {{lang}}",
            field="layout",
        )
    for key, pattern in tried:
        try:
            files = _resolve(root, pattern, list(languages), split, source, source_pair, dict(codes or {}))
        except (KeyError, IndexError, ValueError):
            raise InputError(
                f"bad layout pattern {pattern!r} (fields: {{lang}}, {{split}}, {{pair}})", field="layout"
            ) from None
        if files is not None:
            found = key  # the layout whose files exist, recorded in the corpus
            break
    else:
        patterns = ", ".join(p for _, p in tried)
        raise InputError(
            f"no corpus files for every language of {list(languages)} (split {split!r}) in any of "
            f"the layouts {patterns}",
            file=root,
            field="layout",
        )
    read = {lang: _read(path, limit) for lang, path in files.items()}
    return ParallelCorpus(
        name or root.name,
        root,
        found,
        split,
        {k: v[0] for k, v in read.items()},
        files,
        {k: v[1] for k, v in read.items()},
        {k: v[2] for k, v in read.items()},
        {k: v[3] for k, v in read.items()},
    )
