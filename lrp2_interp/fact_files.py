"""One mLAMA-layout file read and checked: fact and template records, line by line.

Every malformed line raises :class:`~lrp2_interp.errors.InputError` naming the file, the line
and the field; fact sets of many files are assembled in :mod:`lrp2_interp.facts`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lrp2_interp.errors import InputError
from lrp2_interp.files import iter_text_lines

SUBJECT, OBJECT = "[X]", "[Y]"
#: markers a label must not contain: they would be read as a template slot or a mask token
RESERVED_MARKERS = (SUBJECT, OBJECT, "[MASK]", "<mask>")
#: longest label/template accepted (a longer one cannot fit any model's positions)
MAX_LABEL_CHARS = 2_000
_INT = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class Relation:
    relation: str
    language: str
    template: str
    label: str = ""


@dataclass(frozen=True)
class Fact:
    lineid: int
    relation: str
    language: str
    sub_label: str
    obj_label: str
    sub_uri: str = ""
    obj_uri: str = ""
    obj_aliases: tuple[str, ...] = ()

    def is_correct(self, prediction: str) -> bool:
        """A prediction is correct if it is the object label or one of its aliases."""
        return prediction == self.obj_label or prediction in self.obj_aliases


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    for lineno, raw in iter_text_lines(path):  # non-UTF-8 bytes / over-long lines: InputError with the line
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as err:
            raise InputError(f"malformed JSON ({err.msg} at column {err.colno})", file=path, line=lineno) from None
        if not isinstance(obj, dict):
            raise InputError("expected a JSON object per line", file=path, line=lineno)
        yield lineno, obj


def _field(obj: dict, name: str, path: Path, lineno: int, kind: type = str):
    if name not in obj:
        raise InputError("missing field", file=path, line=lineno, field=name)
    value = obj[name]
    if isinstance(value, str) and len(value) > MAX_LABEL_CHARS:
        raise InputError(
            f"value has {len(value):,} characters (limit {MAX_LABEL_CHARS:,})", file=path, line=lineno, field=name
        )
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not _INT.fullmatch(str(value).strip()):
            raise InputError(f"expected an integer, got {value!r}", file=path, line=lineno, field=name)
        return int(value)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"expected a non-empty string, got {value!r}", file=path, line=lineno, field=name)
    return value.strip()


def validate_template(template: str, *, file: Path | str | None = None, line: int | None = None) -> str:
    for slot in (SUBJECT, OBJECT):
        if template.count(slot) != 1:
            raise InputError(
                f"template must contain {slot} exactly once: {template!r}", file=file, line=line, field="template"
            )
    return template


def read_templates(path: Path, language: str) -> dict[str, Relation]:
    out: dict[str, Relation] = {}
    for lineno, obj in read_jsonl(path):
        rel = _field(obj, "relation", path, lineno)
        tpl = validate_template(_field(obj, "template", path, lineno), file=path, line=lineno)
        out[rel] = Relation(rel, language, tpl, str(obj.get("label", "")))
    return out


def read_facts(path: Path, language: str, relation: str) -> tuple[Fact, ...]:
    facts = []
    seen: set[int] = set()
    for lineno, obj in read_jsonl(path):
        lineid = _field(obj, "lineid", path, lineno, int)
        if lineid in seen:
            raise InputError(f"duplicate lineid {lineid}", file=path, line=lineno, field="lineid")
        seen.add(lineid)
        aliases = obj.get("obj_aliases", [])
        if aliases is None:
            aliases = []
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise InputError(
                f"expected a list of strings, got {aliases!r}", file=path, line=lineno, field="obj_aliases"
            )
        labels = {name: _field(obj, name, path, lineno) for name in ("sub_label", "obj_label")}
        for name, value in labels.items():
            for marker in RESERVED_MARKERS:
                if marker in value:
                    raise InputError(
                        f"label contains the reserved marker {marker!r}: {value!r}", file=path, line=lineno, field=name
                    )
        facts.append(
            Fact(
                lineid=lineid,
                relation=relation,
                language=language,
                sub_label=labels["sub_label"],
                obj_label=labels["obj_label"],
                sub_uri=str(obj.get("sub_uri", "")),
                obj_uri=str(obj.get("obj_uri", "")),
                obj_aliases=tuple(a.strip() for a in aliases if a.strip()),
            )
        )
    return tuple(facts)


def check_unique_lineids(root: Path, facts: dict[tuple[str, str], tuple[Fact, ...]]) -> None:
    """Refuse a ``lineid`` used by two relations (in one language or across languages).

    Facts are matched across languages (parallel sets) and split into dev/test by ``lineid``
    alone, so an id repeated across relations (two relation files numbered from 1) would
    silently pair unrelated facts.  The error names both files and lines.
    """
    owner: dict[int, tuple[str, str]] = {}
    for (lang, rel), rows in sorted(facts.items()):
        for fact in rows:
            first = owner.setdefault(fact.lineid, (lang, rel))
            if first[1] != rel:
                a, b = root / first[0] / f"{first[1]}.jsonl", root / lang / f"{rel}.jsonl"
                raise InputError(
                    f"lineid {fact.lineid} is used by two relations ({first[1]} in {a}:{_line_of(a, fact.lineid)} "
                    "and this one): facts are matched across languages and split by lineid, so ids must be unique "
                    "across relations; renumber one file",
                    file=b,
                    line=_line_of(b, fact.lineid),
                    field="lineid",
                )


def _line_of(path: Path, lineid: int) -> int | None:
    """The line number of ``lineid`` in a fact file (only read to word an error)."""
    for lineno, obj in read_jsonl(path):
        if str(obj.get("lineid", "")).strip() == str(lineid):
            return lineno
    return None
