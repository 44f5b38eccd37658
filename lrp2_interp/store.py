"""A resumable result store: one atomically written shard per unit of work.

Long runs (a sweep over (m, n) pairs, attribution over thousands of facts) are cut
into units with stable keys.  Each finished unit is written as
``{root}/shards/{key}.parquet`` via a temporary file and a rename, so a killed run
leaves only complete shards; restarting the same command skips them.  ``merge``
concatenates the shards in key order into the final table.  :class:`MemoryStore` is the same store
kept in memory: an analysis called without a results folder computes the same units and writes nothing.
A store is handed to an analysis by whoever runs it (the CLI's runner, a ``run_*`` function); the
analysis calls :meth:`ShardStore.guard` with its manifest (:mod:`lrp2_interp.manifest`) before
computing, and :meth:`ShardStore.child` for the units of one part (a language).

Sharding across processes (``torchrun``) assigns unit ``i`` to rank ``i % world``;
see :mod:`lrp2_interp.distributed`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lrp2_interp.files import write_json, write_table
from lrp2_interp.manifest import RUN_JSON, check_manifest

_KEY = re.compile(r"^[A-Za-z0-9_.=-]+$")


@dataclass(frozen=True)
class ShardStore:
    root: Path
    #: the run's record: written as ``{root}/run.json`` with ``"complete": false`` once :meth:`guard` passes
    record: Mapping[str, Any] | None = None

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

    def child(self, *parts: str) -> ShardStore:
        """The store of one part of the run (``{root}/{part}/...``), e.g. one language's units."""
        return ShardStore(self.root.joinpath(*parts))

    def guard(self, manifest: Mapping[str, Any]) -> None:
        """:func:`check_manifest` of this store's folder: refuse another run's units, record this run's
        (and, with a ``record``, mark the run under way in ``run.json``)."""
        check_manifest(self.root, manifest)
        if self.record is not None:
            write_json(self.root / RUN_JSON, {**self.record, "complete": False})

    def run(
        self,
        units: Iterable[tuple[str, Callable[[], pd.DataFrame]]],
        *,
        rank: int = 0,
        world: int = 1,
        progress: Callable[[str, bool], None] | None = None,
    ) -> list[str]:
        """Compute this rank's units that are not stored yet; return every unit key in order."""
        return run_units(self, units, rank=rank, world=world, progress=progress)


class MemoryStore:
    """A :class:`ShardStore` kept in memory: the same units and keys, nothing written, nothing resumed."""

    def __init__(self) -> None:
        self._shards: dict[str, pd.DataFrame] = {}
        self._children: dict[tuple[str, ...], MemoryStore] = {}

    def child(self, *parts: str) -> MemoryStore:
        return self._children.setdefault(tuple(parts), MemoryStore())

    def guard(self, manifest: Mapping[str, Any]) -> None:
        """Nothing to guard: a store in memory belongs to one run."""

    def has(self, key: str) -> bool:
        return key in self._shards

    def write(self, key: str, df: pd.DataFrame) -> None:
        self._shards[key] = df

    def read(self, key: str) -> pd.DataFrame:
        return self._shards[key]

    def keys(self) -> list[str]:
        return sorted(self._shards)

    def merge(self, keys: Sequence[str] | None = None) -> pd.DataFrame:
        frames = [self._shards[k] for k in (self.keys() if keys is None else keys)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def run(
        self,
        units: Iterable[tuple[str, Callable[[], pd.DataFrame]]],
        *,
        rank: int = 0,
        world: int = 1,
        progress: Callable[[str, bool], None] | None = None,
    ) -> list[str]:
        """:meth:`ShardStore.run` in memory."""
        return run_units(self, units, rank=rank, world=world, progress=progress)


def run_units(
    store: ShardStore | MemoryStore,
    units: Iterable[tuple[str, Callable[[], pd.DataFrame]]],
    *,
    rank: int = 0,
    world: int = 1,
    progress: Callable[[str, bool], None] | None = None,
) -> list[str]:
    """Compute the units of rank ``rank`` (unit ``i`` when ``i % world == rank``) that ``store`` does not hold
    yet, writing each into it; every unit key in order.  ``progress(key, was_stored)`` after each of this rank's."""
    keys = []
    for i, (key, compute) in enumerate(units):
        keys.append(key)
        if i % world != rank:
            continue
        done = store.has(key)
        if not done:
            store.write(key, compute())
        if progress is not None:
            progress(key, done)
    return keys


#: where an analysis keeps its units: a results folder's shards, or memory
UnitStore = ShardStore | MemoryStore


def unit_store(store: UnitStore | None) -> UnitStore:
    """``store``, or a new :class:`MemoryStore` when None."""
    return MemoryStore() if store is None else store
