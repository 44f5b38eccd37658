"""What a results folder's results depend on, and the guard that refuses another run's folder.

Shard keys (:mod:`lrp2_interp.store`) name only the unit (language, (m, n), chunk), so a results folder
carries a manifest, ``{root}/manifest.json``: the run's config, a digest of the
facts, a fingerprint of the model (and of the language vectors) and the package
version.  :func:`check_manifest` is called before any unit is computed; a folder
whose manifest differs, or that holds shards without a manifest, is refused with
one line naming what differs (``dtype: float32 -> float64``) -- old shards are never mixed into a
new table.  The manifest holds what changes a number: the settings (less the speed-only ones of
:mod:`lrp2_interp.execution`), the facts' content, the model's weights and dtype and the language vectors'
content (loaded vectors) or provenance (computed ones).  A run that passes the check marks an
existing ``run.json`` incomplete (:func:`mark_incomplete`); the runner marks it complete when it ends
(:func:`finish_record`).  :func:`clear_results` empties a results folder (``--overwrite``).
:func:`check_file_manifest` guards a result that is a few files rather than a folder (language vectors)
the same way, with a manifest beside them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lrp2_interp.errors import InputError
from lrp2_interp.execution import speed_fields
from lrp2_interp.files import jsonable, write_json

MANIFEST = "manifest.json"
RUN_JSON = "run.json"
#: config fields that do not change any stored result (left out of the manifest), in every config
_NOT_RESULTS = frozenset({"progress"})
#: the manifest entries whose values are digests: named in words when they differ
_DIGESTS = {
    "facts_digest": "facts (their content)",
    "model.weights_sha256": "model weights",
    "vectors_digest": "language vectors (their content)",
}


def model_fingerprint(lm: Any, *, sample: int = 4096) -> dict[str, Any]:
    """Name, sizes and a hash of a strided sample of every parameter tensor of ``lm``."""
    h = hashlib.sha256()
    for name, t in sorted(lm.bridge.original_model.state_dict().items()):
        flat = t.detach().reshape(-1)
        step = max(1, flat.numel() // sample)
        h.update(name.encode())
        h.update(repr(tuple(t.shape)).encode())
        h.update(flat[::step][:sample].float().cpu().numpy().tobytes())
    return {
        "name": str(lm.name),
        "kind": lm.kind,
        "n_layers": lm.n_layers,
        "d_model": lm.d_model,
        "d_mlp": lm.d_mlp,
        "vocab": len(lm.tokenizer),
        "weights_sha256": h.hexdigest(),
    }


def vectors_digest(vectors: Any) -> str | None:
    """sha256 identifying language vectors (``None`` for none).

    Vectors loaded from a file (``vectors.path`` set): the content, i.e. every tensor's name, shape and
    float32 bytes -- never the file's name or size, so another file with the same name is another run.
    Vectors computed in the run: their provenance (``vectors.provenance()``: model, fingerprint, sizes,
    corpus description, the sha256 of each language's sentences and the token choice), not the float
    bytes: recomputing the same vectors with another thread count may change their last bits, and such a
    rerun must still resume.  Known before the vectors are computed (:func:`provenance_digest` of
    :func:`lrp2_interp.lrp2.vectors.planned_provenance`), so the folder is checked first.
    """
    if vectors is None:
        return None
    if getattr(vectors, "path", None) is not None:
        return vectors_content_digest(vectors)
    return provenance_digest(vectors.provenance())


def provenance_digest(provenance: Mapping[str, Any]) -> str:
    """sha256 of a provenance record (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(jsonable(dict(provenance)), sort_keys=True).encode()).hexdigest()


def vectors_content_digest(vectors: Any) -> str:
    """sha256 of the vectors' tensors (names, shapes, float32 bytes), embedding rows included."""
    h = hashlib.sha256()
    tensors = {**dict(vectors.vectors), **{f"embeddings/{k}": v for k, v in vectors.embeddings.items()}}
    for name in sorted(tensors):
        t = tensors[name].detach().float().cpu().contiguous()
        h.update(name.encode())
        h.update(repr(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def settings(obj: Any) -> Any:
    """``obj`` (configs, dicts, lists) as JSON types without the fields that change no number
    (``progress`` anywhere, and the speed-only fields of each config class: :func:`~lrp2_interp.execution.speed_fields`)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        skip = _NOT_RESULTS | speed_fields(obj)
        return {f.name: settings(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name not in skip}
    if isinstance(obj, dict):
        return {str(k): settings(v) for k, v in obj.items() if k not in _NOT_RESULTS}
    if isinstance(obj, (list, tuple)):
        return [settings(v) for v in obj]
    return jsonable(obj)


def dtype_name(lm: Any) -> str | None:
    """``lm``'s parameter dtype as the CLI spells it (``"float32"``), None without a model."""
    return None if lm is None else str(lm.dtype).removeprefix("torch.")


def results_manifest(
    config: Any, *, facts: Any = None, lm: Any = None, vectors: Any = None, **extra: Any
) -> dict[str, Any]:
    """What every stored result of a folder depends on (see the module docstring)."""
    from lrp2_interp import __version__
    from lrp2_interp.facts import facts_digest

    manifest = {
        "package_version": __version__,
        "config": settings(config),
        "facts": None
        if facts is None
        else {
            "languages": list(facts.languages),
            "relations": list(facts.relations),
            "n_facts": {lang: facts.n_facts(lang) for lang in facts.languages},
        },
        "facts_digest": None if facts is None else facts_digest(facts),
        "model": None if lm is None else model_fingerprint(lm),
        "dtype": dtype_name(lm),
        "vectors_digest": vectors_digest(vectors),
        **{k: settings(v) for k, v in extra.items()},
    }
    return json.loads(json.dumps(manifest))  # tuples -> lists, as read back from disk


def _differences(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``[(dotted key, old value, new value)]`` of every leaf that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [(prefix.rstrip("."), old, new)]


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def describe_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two manifests, in words: ``dtype: float32 -> float64``, ``model weights``.

    Digests are named, not shown; a dtype change is not also reported as changed weights."""
    diffs = _differences(dict(old), dict(new))
    keys = {k for k, _, _ in diffs}
    out = []
    for key, a, b in diffs:
        if key == "model.weights_sha256" and "dtype" in keys:
            continue  # the weights' digest follows the dtype: one cause, one entry
        out.append(_DIGESTS[key] if key in _DIGESTS else f"{key}: {_shown(a)} -> {_shown(b)}")
    return out


def results_files(root: Path) -> list[Path]:
    """What marks ``root`` as holding results: its manifest, ``run.json`` or stored shards."""
    if not root.is_dir():
        return []
    marks = [p for p in (root / MANIFEST, root / RUN_JSON) if p.is_file()]
    return marks + [p for p in root.rglob("*.parquet") if p.parent.name == "shards"]


def mark_incomplete(root: str | Path) -> None:
    """Rewrite ``{root}/run.json`` (when there is one) with ``"complete": false``: a run is under way."""
    path = Path(root) / RUN_JSON
    if not path.is_file():
        return
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        meta = {}
    meta = {k: v for k, v in meta.items() if k != "complete"} if isinstance(meta, dict) else {}
    write_json(path, {**meta, "complete": False})


def finish_record(root: str | Path, meta: Mapping[str, Any]) -> Path:
    """``{root}/run.json``: ``meta`` with ``"complete": true`` as its last field (only a finished run has it)."""
    return write_json(Path(root) / RUN_JSON, {**{k: v for k, v in meta.items() if k != "complete"}, "complete": True})


def clear_results(root: str | Path) -> None:
    """Empty the results folder ``root`` (``--overwrite``); refuse a folder that holds other files only.

    Removes ``root`` when it holds lrp2-interp results (:func:`results_files`) or nothing; a folder of
    other files is refused, never removed.
    """
    root = Path(root)
    if not root.exists():
        return
    if not root.is_dir():
        raise InputError("--out is a file, not a folder", file=root, field="--out")
    if results_files(root) or not any(root.iterdir()):
        shutil.rmtree(root)
        return
    raise InputError(
        f"--overwrite removes a results folder only, and this one holds no {MANIFEST}, {RUN_JSON} or shards: "
        "use a new --out",
        file=root,
        field="--out",
    )


def check_manifest(
    root: str | Path, manifest: Mapping[str, Any], *, ignore: Sequence[str] = (), write: bool = True
) -> Path:
    """Refuse a results folder made by another run; write the manifest into a new one.

    Call it before any unit is computed or any result written.  Raises :class:`InputError` when
    ``{root}/manifest.json`` differs from ``manifest`` (one line naming what differs) or when ``root``
    holds results (shards, ``run.json``) but no manifest (made by an older version: its settings
    are unknown).  A run that passes marks an existing ``run.json`` incomplete (:func:`mark_incomplete`).

    ``write=False`` with ``ignore`` (top-level keys) is an early check that writes nothing: e.g. every
    entry but the vectors' digest, before the vectors are computed.
    """
    root = Path(root)
    path = root / MANIFEST
    new = json.loads(json.dumps(jsonable({k: v for k, v in manifest.items() if k not in ignore})))
    if path.is_file():
        refuse_other_run(path, new, ignore=ignore, where=root)
        if write:
            mark_incomplete(root)
        return path
    stale = results_files(root)
    if stale:
        shards = [p for p in stale if p.suffix == ".parquet"]
        held = f"{len(shards)} shard(s)" if shards else f"results ({stale[0].name})"
        raise InputError(
            f"this results folder holds {held} but no {MANIFEST} (settings unknown); "
            "use a new --out, --overwrite or remove the folder",
            file=root,
        )
    return write_json(path, new) if write else path


def refuse_other_run(
    path: Path, new: Mapping[str, Any], *, ignore: Sequence[str] = (), where: Path, held: str = "this results folder"
) -> None:
    """Raise :class:`InputError` (one line naming what differs) when the manifest ``path`` differs from ``new``."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        old = {k: v for k, v in old.items() if k not in ignore} if isinstance(old, dict) else old
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(
            "unreadable results manifest: use a new --out, --overwrite or remove the folder", file=path
        ) from None
    diff = describe_differences(old, new) if isinstance(old, dict) else ["the manifest"]
    if diff:
        shown = "; ".join(diff[:6]) + (f" and {len(diff) - 6} more" if len(diff) > 6 else "")
        raise InputError(
            f"{held} holds results of another run (differs in: {shown}); use a new "
            f"--out, --overwrite or remove {'the folder' if held == 'this results folder' else 'it'}",
            file=where,
        )


def file_manifest(target: str | Path) -> Path:
    """The manifest beside a result made of files ``target.*`` (``v`` -> ``v.manifest.json``)."""
    target = Path(target)
    return target.with_name(f"{target.stem}.manifest.json")


def check_file_manifest(
    target: str | Path, outputs: Sequence[Path], manifest: Mapping[str, Any], *, overwrite: bool = False
) -> Path:
    """:func:`check_manifest` for a result that is the files ``outputs`` (e.g. vectors and their JSON), not a folder.

    The manifest lies beside them (:func:`file_manifest`).  ``overwrite`` removes the earlier result
    first; else one made by another run (or without a manifest) is refused in one line.
    """
    path = file_manifest(target)
    new = json.loads(json.dumps(jsonable(dict(manifest))))
    if overwrite:
        for p in (*outputs, path):
            if p.is_file():
                p.unlink()
    if path.is_file():
        refuse_other_run(path, new, where=Path(target), held="this output")
        return path
    stale = [p for p in outputs if p.exists()]
    if stale:
        raise InputError(
            f"{stale[0].name} holds an earlier result but there is no {path.name} (settings unknown); "
            "use a new --out, --overwrite or remove it",
            file=stale[0],
        )
    return write_json(path, new)
