"""A resumable result store: one atomically written shard per unit of work.

Long runs (a sweep over (m, n) pairs, attribution over thousands of facts) are cut
into units with stable keys.  Each finished unit is written as
``{root}/shards/{key}.parquet`` via a temporary file and a rename, so a killed run
leaves only complete shards; restarting the same command skips them.  ``merge``
concatenates the shards in key order into the final table.

Sharding across processes (``torchrun``) assigns unit ``i`` to rank ``i % world``;
see :mod:`lrp2_interp.distributed`.

Shard keys name only the unit (language, (m, n), chunk), so a results folder
carries a manifest, ``{root}/manifest.json``: the run's config, a digest of the
facts, a fingerprint of the model (and of the language vectors) and the package
version.  :func:`check_manifest` is called before any unit is computed; a folder
whose manifest differs, or that holds shards without a manifest, is refused with
one line naming what differs -- old shards are never mixed into a new table.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lrp2_interp.errors import InputError
from lrp2_interp.files import jsonable, write_json, write_table

MANIFEST = "manifest.json"
#: config fields that do not change any stored result (left out of the manifest)
_NOT_RESULTS = frozenset({"progress"})

_KEY = re.compile(r"^[A-Za-z0-9_.=-]+$")


@dataclass(frozen=True)
class ShardStore:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def shard_dir(self) -> Path:
        return self.root / "shards"

    def path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"shard key {key!r} must be letters, digits, '_', '.', '=', '-'")
        return self.shard_dir / f"{key}.parquet"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def write(self, key: str, df: pd.DataFrame) -> Path:
        return write_table(self.path(key), df)

    def read(self, key: str) -> pd.DataFrame:
        return pd.read_parquet(self.path(key))

    def keys(self) -> list[str]:
        # temporary files of an interrupted write start with "." and are never listed
        return sorted(p.stem for p in self.shard_dir.glob("[!.]*.parquet")) if self.shard_dir.is_dir() else []

    def merge(self, keys: Sequence[str] | None = None) -> pd.DataFrame:
        keys = list(keys) if keys is not None else self.keys()
        missing = [k for k in keys if not self.has(k)]
        if missing:
            raise FileNotFoundError(f"{len(missing)} shard(s) missing in {self.shard_dir}: {missing[:5]}")
        frames = [self.read(k) for k in keys]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def run(
        self,
        units: Iterable[tuple[str, Callable[[], pd.DataFrame]]],
        *,
        rank: int = 0,
        world: int = 1,
        progress: Callable[[str, bool], None] | None = None,
    ) -> list[str]:
        """Compute this rank's units that are not stored yet; return every unit key in order."""
        keys = []
        for i, (key, compute) in enumerate(units):
            keys.append(key)
            if i % world != rank:
                continue
            done = self.has(key)
            if not done:
                self.write(key, compute())
            if progress is not None:
                progress(key, done)
        return keys


# ------------------------------------------------------------------ results-folder manifest
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
    """sha256 of where language vectors come from (``None`` for none).

    The provenance (model, fingerprint, sizes, corpus description and sentence
    counts per language), not the float bytes: recomputing the same vectors with
    another thread count may change their last bits, and such a rerun must still
    resume.  A vector *file* is identified by its own sha256 (the CLI records it).
    """
    if vectors is None:
        return None
    desc = {
        "model": vectors.model_name,
        "fingerprint": vectors.fingerprint,
        "sizes": [vectors.n_layers, vectors.d_model],
        "languages": list(vectors.languages),
        "corpus": dict(sorted(vectors.corpus.items())),
        "n_sentences": dict(sorted(vectors.n_sentences.items())),
    }
    return hashlib.sha256(json.dumps(jsonable(desc), sort_keys=True).encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in _NOT_RESULTS}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def results_manifest(config: Any, *, facts: Any, lm: Any, vectors: Any = None, **extra: Any) -> dict[str, Any]:
    """What every stored result of a folder depends on (see the module docstring)."""
    from lrp2_interp import __version__
    from lrp2_interp.facts import facts_digest

    manifest = {
        "package_version": __version__,
        "config": _strip(jsonable(config)),
        "facts": {
            "languages": list(facts.languages),
            "relations": list(facts.relations),
            "n_facts": {lang: facts.n_facts(lang) for lang in facts.languages},
        },
        "facts_digest": facts_digest(facts),
        "model": model_fingerprint(lm),
        "vectors_digest": vectors_digest(vectors),
        **{k: jsonable(v) for k, v in extra.items()},
    }
    return json.loads(json.dumps(manifest))  # tuples -> lists, as read back from disk


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]


def check_manifest(root: str | Path, manifest: Mapping[str, Any]) -> Path:
    """Refuse a results folder made by another run; write the manifest into a new one.

    Call it before any unit is computed.  Raises :class:`InputError` when
    ``{root}/manifest.json`` differs from ``manifest`` or when ``root`` holds
    shards but no manifest (made by an older version: its settings are unknown).
    """
    root = Path(root)
    path = root / MANIFEST
    new = json.loads(json.dumps(jsonable(dict(manifest))))
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError("unreadable results manifest: remove the folder or use a new --out", file=path) from None
        diff = _differences(old, new)
        if diff:
            shown = ", ".join(diff[:6]) + (f" and {len(diff) - 6} more" if len(diff) > 6 else "")
            raise InputError(
                f"this results folder holds results of another run (differs in: {shown}); use a new "
                f"--out or remove the folder",
                file=root,
            )
        return path
    stale = [p for p in root.rglob("*.parquet") if p.parent.name == "shards"] if root.is_dir() else []
    if stale:
        raise InputError(
            f"this results folder holds {len(stale)} shard(s) but no {MANIFEST} (settings unknown); "
            "use a new --out or remove the folder",
            file=root,
        )
    return write_json(path, new)
