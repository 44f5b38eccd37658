"""Checks of the command-line arguments, run before any model is loaded or any file written.

:func:`check_args` refuses every argument value that would otherwise give a
silently wrong result (``--max-facts -2`` dropping facts, ``--languages ja ja``
counting facts twice, ``sweep --language en`` sweeping the source onto itself,
``--lrp2 zz=0,2`` for a language not in the run, ``--dev-fraction 1``) or a
traceback after the run started (``--n-boot 0``, a bogus ``--device``, an
``--out`` that is a file or not writable).  Each failure is one
:class:`~lrp2_interp.errors.InputError` naming the argument.  ``--lrp2`` has one grammar,
``LANG=M,N`` (:func:`parse_lrp2`); the old ``M N`` of probe/lape/lens is accepted for one
release with one deprecation line on stderr.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrp2_interp.errors import InputError
from lrp2_interp.layers import EMBEDDINGS

#: arguments that must be >= 1 when given
POSITIVE = (
    "max_facts",
    "batch_size",
    "max_candidates",
    "n_boot",
    "steps",
    "top",
    "top_k",
    "n_perm",
    "limit",
    "kn_facts",
    "threads",
    "epochs",
    "max_steps",
    "unit_facts",
    "max_dev",
    "max_test",
    "first_rung",
)
#: largest value accepted for options whose value sets an allocation (bootstrap/permutation draws, IG steps):
#: ``--n-boot 5e7`` would otherwise fail with a MemoryError after partial outputs
UPPER = {
    "n_boot": 100_000,
    "n_perm": 100_000,
    "steps": 16_384,
    "max_steps": 16_384,
    "controls": 1000,
    "n_controls": 1000,
}
#: (command, argument) of POSITIVE where 0 is accepted too (``lape --kn-facts 0``, its default: no overlap)
NON_NEGATIVE = (("lape", "kn_facts"),)
#: longest ``attribute --prompt`` / ``--target`` accepted (characters)
MAX_PROMPT_CHARS = 20_000


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Lrp2Arg:
    """A parsed ``--lrp2``: (m, n) per language, or one (m, n) for every language (the deprecated ``M N``)."""

    pairs: Mapping[str, tuple[int, int]]  # LANG=M,N as given, in order
    every: tuple[int, int] | None = None  # the deprecated form ``--lrp2 M N``

    def for_languages(self, languages: Sequence[str]) -> dict[str, tuple[int, int]]:
        """(m, n) per language; the deprecated form gives every one of ``languages`` the same pair.

        A pair for a language not among ``languages`` is refused (it would silently do nothing).
        """
        if self.every is not None:
            return dict.fromkeys(languages, self.every)
        extra = sorted(set(self.pairs) - set(languages))
        if extra:
            raise InputError(
                f"(m, n) given for {', '.join(extra)}, not among --languages {' '.join(languages)}", field="--lrp2"
            )
        return dict(self.pairs)

    def deprecation(self, languages: Sequence[str]) -> str | None:
        """The one warning line for the deprecated form (None for ``LANG=M,N``), naming the new form."""
        if self.every is None:
            return None
        m, n = self.every
        new = " ".join(f"{lang}={m},{n}" for lang in languages) if languages else f"LANG={m},{n} (one per language)"
        return f"lrp2-interp: warning: --lrp2 {m} {n} is deprecated; use --lrp2 {new}"


def _layer_pair(m: int, n: int, given: str) -> tuple[int, int]:
    if m < EMBEDDINGS or n < EMBEDDINGS or m > n:
        raise InputError(
            f"need {EMBEDDINGS} <= M <= N (block indices; {EMBEDDINGS} = the embedding output), got {given!r}",
            field="--lrp2",
        )
    return m, n


def parse_lrp2(items: Sequence[str] | None, *, legacy: bool = False) -> Lrp2Arg:
    """Parse ``fr=2,4 zh=1,3`` (and, with ``legacy``, the deprecated ``2 4``) into an :class:`Lrp2Arg`.

    A malformed item, an empty language, a language given twice or a negative or
    decreasing layer pair is one :class:`~lrp2_interp.errors.InputError`.
    """
    items = list(items or [])
    if legacy and len(items) == 2 and all(_is_int(x) for x in items):
        return Lrp2Arg({}, _layer_pair(int(items[0]), int(items[1]), " ".join(items)))
    out: dict[str, tuple[int, int]] = {}
    for item in items:
        try:
            lang, mn = item.split("=")
            m, n = (int(x) for x in mn.split(","))
        except ValueError:
            raise InputError(f"expected LANG=M,N (e.g. fr=2,4), got {item!r}", field="--lrp2") from None
        if not lang.strip():
            raise InputError(f"expected LANG=M,N (e.g. fr=2,4), got {item!r}: no language", field="--lrp2")
        if lang in out:
            raise InputError(f"language '{lang}' given twice", field="--lrp2")
        out[lang] = _layer_pair(m, n, item)
    return Lrp2Arg(out)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def check_device(device: str) -> None:
    """Refuse a device string torch does not know, or an accelerator this machine does not have."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise InputError(f"unknown device {device!r} (e.g. cpu, cuda, cuda:1)", field="--device") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r} requested but CUDA is not available on this machine", field="--device")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s)", field="--device")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {device!r} requested but MPS is not available", field="--device")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"device {device!r} is not supported (use cpu, cuda or mps)", field="--device")


def check_writable(path: str | Path, *, is_file: bool = False, field: str = "--out") -> None:
    """``path`` (a folder, or a file when ``is_file``) can be created or written, checked without writing."""
    path = Path(path)
    if path.exists():
        if is_file and path.is_dir():
            raise InputError("is a folder, expected a file path", file=path, field=field)
        if not is_file and not path.is_dir():
            raise InputError("exists and is not a folder", file=path, field=field)
    probe = path.parent if is_file or not path.exists() else path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"cannot create it: {probe} is a file", file=path, field=field)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"not writable ({probe} is read-only for this user)", file=path, field=field)


def _languages(args: argparse.Namespace) -> list[str]:
    langs = list(getattr(args, "languages", None) or [])
    repeated = sorted({lang for lang in langs if langs.count(lang) > 1})
    if repeated:
        raise InputError(f"language {', '.join(repeated)} given more than once", field="--languages")
    return langs


def check_finite(args: argparse.Namespace) -> None:
    """Refuse NaN and infinity in every float argument (``align --ridge nan`` would run plain least squares)."""
    for name, value in sorted(vars(args).items()):
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(item, float) and not math.isfinite(item):
                raise InputError(f"must be a finite number, got {item}", field=_flag(name))


def check_args(args: argparse.Namespace) -> None:
    """Every check of the module docstring for the parsed ``args`` of any command."""
    check_finite(args)
    for name, most in UPPER.items():
        value = getattr(args, name, None)
        if value is not None and value > most:
            raise InputError(f"must be at most {most:,}, got {value:,}", field=_flag(name))
    for name in POSITIVE:
        value = getattr(args, name, None)
        least = 0 if (args.command, name) in NON_NEGATIVE else 1
        if value is not None and value < least:
            raise InputError(f"must be at least {least}, got {value}", field=_flag(name))
    for name in ("controls", "n_controls"):  # matched-control draws: 0 runs none
        value = getattr(args, name, None)
        if value is not None and value < 0:
            raise InputError(f"must be at least 0, got {value}", field=_flag(name))
    eta = getattr(args, "eta", None)
    if eta is not None and eta < 2:
        raise InputError(f"must be at least 2 (keep 1/eta of the settings per rung), got {eta}", field="--eta")
    dev = getattr(args, "dev_fraction", None)
    if dev is not None and not 0.0 < dev < 1.0:
        raise InputError(
            f"must be strictly between 0 and 1 (dev and test facts both non-empty), got {dev}", field="--dev-fraction"
        )
    target_delta = getattr(args, "target_delta", None)
    if target_delta is not None and not target_delta > 0:
        raise InputError(
            f"must be > 0 (an absolute completeness tolerance), got {target_delta}", field="--target-delta"
        )
    threshold = getattr(args, "threshold", None)
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise InputError(f"must be in (0, 1] (a share of the maximum score), got {threshold}", field="--threshold")
    for name in ("layers",):
        bad = [x for x in getattr(args, name, None) or [] if x < EMBEDDINGS]
        if bad:
            raise InputError(
                f"layers are block indices counted from 0 ({EMBEDDINGS} = the embedding output), got {bad[0]}",
                field=_flag(name),
            )
    if getattr(args, "relations", None):
        rels = list(args.relations)
        repeated = sorted({r for r in rels if rels.count(r) > 1})
        if repeated:
            raise InputError(f"relation {', '.join(repeated)} given more than once", field="--relations")
    langs = _languages(args)
    source = getattr(args, "source", None)
    if source is not None:
        if args.command in ("run", "neurons", "similarity") and source in langs:
            raise InputError(f"'{source}' is the source language; list only target languages", field="--languages")
        if args.command == "sweep" and args.language == source:
            raise InputError(
                f"'{source}' is the source language: sweeping it onto itself measures nothing", field="--language"
            )
    if getattr(args, "lrp2", None) is not None:
        _check_lrp2(args, langs, source)
    if args.command == "attribute":
        for name in ("prompt", "target"):
            text = getattr(args, name)
            if not text.strip():
                raise InputError("must not be empty", field=_flag(name))
            if len(text) > MAX_PROMPT_CHARS:
                raise InputError(f"{len(text):,} characters (limit {MAX_PROMPT_CHARS:,})", field=_flag(name))
    for name in ("vectors",):
        given = getattr(args, name, None)
        if given and args.command != "vectors":
            from lrp2_interp.lrp2.vectors import vectors_path  # torch: imported only when vectors are given

            if not vectors_path(given).is_file():
                raise InputError("language vector file not found", file=vectors_path(given), field=_flag(name))
    if getattr(args, "device", None) is not None:
        check_device(args.device)
    out = getattr(args, "out", None)
    if out is not None:
        check_writable(out, is_file=args.command == "vectors")


def check_vectors(vectors: Any, lm: Any, languages: Sequence[str]) -> None:
    """Language vectors fit ``lm`` and hold every one of ``languages`` (the source and LRP2's targets):
    checked before any compute, so a missing language is not found after hours of it."""
    vectors.check_model(lm)
    missing = [lang for lang in dict.fromkeys(languages) if lang not in vectors.vectors]
    if missing:
        raise InputError(
            f"no language vector for {', '.join(repr(m) for m in missing)} (have: {', '.join(vectors.languages)})",
            file=vectors.path,
            field="--vectors",
        )


#: commands whose ``--lrp2`` still accepts the deprecated ``M N`` (one release)
LEGACY_LRP2 = ("probe", "lape", "lens")


def _check_lrp2(args: argparse.Namespace, langs: list[str], source: str | None) -> None:
    """``--lrp2`` parses, names only languages of the run (when they are given) and warns once if deprecated."""
    lrp2 = parse_lrp2(args.lrp2, legacy=args.command in LEGACY_LRP2)
    targets = [lang for lang in langs if lang != source]
    if langs:  # lape's --languages include the source, whose neurons LRP2 does not shift
        lrp2.for_languages(targets if args.command == "lape" else langs)
    warning = lrp2.deprecation(targets)
    if warning is not None:
        print(warning, file=sys.stderr)
