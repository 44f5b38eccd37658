"""A resumable result store: one atomically written shard per unit of work.

Long runs (a sweep over (m, n) pairs, attribution over thousands of facts) are cut
into units with stable keys.  Each finished unit is written as
``{root}/shards/{key}.parquet`` via a temporary file and a rename, so a killed run
leaves only complete shards; restarting the same command skips them.  ``merge``
concatenates the shards in key order into the final table.

Sharding across processes (``torchrun``) assigns unit ``i`` to rank ``i % world``;
see :mod:`lrp2_interp.distributed`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd

from .io import write_table

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

    def run(self, units: Iterable[tuple[str, Callable[[], pd.DataFrame]]], *, rank: int = 0,
            world: int = 1, progress: Callable[[str, bool], None] | None = None) -> list[str]:
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
