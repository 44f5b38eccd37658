"""Sharding work across processes started by ``torchrun``.

``torchrun --nproc_per_node 2 -m lrp2_interp.cli.main ...`` sets RANK/WORLD_SIZE; every
rank computes its share of the units of a :class:`~lrp2_interp.store.ShardStore`
(unit ``i`` -> rank ``i % world``), waits at a barrier, and rank 0 merges the
shards.  The process group uses gloo on CPU and nccl on GPU.  Without torchrun
this is a single process (rank 0 of 1) and no process group is created.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.barrier()

    def close(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def init_distributed(device: str = "cpu") -> Dist:
    """Join the torchrun process group if launched by torchrun, else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if str(device).startswith("cuda") else "gloo"
        torch.distributed.init_process_group(backend=backend)
    return Dist(rank=rank, world=world)
