"""How fast a run is computed, never what it computes: the settings a resume may change.

:class:`ExecutionConfig` holds the device and placement, the torch threads, the batch size, the
memory budget and the engine or code path.  None of them changes a number, so none is part of a
results folder's manifest (:func:`lrp2_interp.manifest.results_manifest`): rerunning a command with
other execution settings resumes the folder, while a change of anything that alters numbers (the
analysis configs, the facts, the model's weights and its dtype) is refused.

This module is the one place that says which settings are speed-only: :data:`SPEED_OPTIONS` (the
command-line options, the fields of :class:`ExecutionConfig`) and :data:`SPEED_FIELDS` (the fields of
analysis configs that repeat one of them).  The dtype is not here: it changes numbers.

:meth:`ExecutionConfig.configure` feeds the settings into the analysis configs: a command builds its
configs from the options that change numbers and passes them through ``run.execution.configure(...)``,
which sets every :data:`SPEED_FIELDS` field, however deeply nested, from the execution setting of the same
name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

C = TypeVar("C")


@dataclass(frozen=True)
class ExecutionConfig:
    """Where and how fast a run is computed (see the module docstring); None: the default of each analysis."""

    device: str = "cpu"
    device_map: str | None = None  # accelerate's placement over GPUs, CPU and disk ("auto", ...)
    max_memory: tuple[str, ...] | None = None  # with device_map: DEVICE=SIZE per device
    offload_folder: str | None = None  # with device_map: weights offloaded to disk
    threads: int | None = None  # torch threads (None: torch's choice)
    batch_size: int | None = None  # sequences per forward pass
    memory_mb: int | None = None  # budget for one pass's activations and logits
    memory_budget_mb: float | None = None  # attribution's budget (its config's name for the same setting)
    path: str | None = None  # "fast" or "reference" implementation of one computation
    engine: str | None = None  # the sweep's engine ("cached" or "per_pair")

    @classmethod
    def from_options(cls, options: Any) -> ExecutionConfig:
        """The execution settings among ``options`` (e.g. parsed command-line arguments); absent ones: defaults."""
        given = {f.name: getattr(options, f.name) for f in dataclasses.fields(cls) if hasattr(options, f.name)}
        if given.get("device") is None:
            given.pop("device", None)
        if isinstance(given.get("max_memory"), list):
            given["max_memory"] = tuple(given["max_memory"])
        return cls(**given)

    def configure(self, config: C) -> C:
        """``config`` with every speed-only field (:data:`SPEED_FIELDS`) set from these settings.

        ``config`` is a frozen dataclass config, or a tuple, list or mapping of them; nested configs (a
        field, tuple, list or mapping holding one) are configured too.  Each field is fed by the setting of
        its own name, where that setting is not None: ``ProbeConfig.batch_size`` by :attr:`batch_size`,
        ``ProbeConfig.memory_mb`` by :attr:`memory_mb`, ``AttributionConfig.memory_budget_mb`` by
        :attr:`memory_budget_mb` (:attr:`memory_mb` does not feed attribution: its autograd budget
        is given as :attr:`memory_budget_mb`), ``SweepConfig.engine`` by :attr:`engine`,
        ``DemoConfig.device`` by :attr:`device` (always given: ``"cpu"`` by default).  Every other field is
        left as it is, and an object with nothing to change is returned itself (not a copy).
        """
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}
        return cast(C, _feed(config, given))

    def apply(self) -> None:
        """Set what is process-wide: torch's threads, when given."""
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)


#: the command-line options (argparse names) that change speed only: left out of every manifest
SPEED_OPTIONS = frozenset(f.name for f in dataclasses.fields(ExecutionConfig))

#: the fields of analysis configs that repeat an execution setting, per config class (left out of the manifest:
#: a rerun with another batch size, memory budget, path or engine resumes the same folder)
SPEED_FIELDS: dict[str, frozenset[str]] = {
    "ProbeConfig": frozenset({"batch_size", "memory_mb", "path"}),
    "AttributionConfig": frozenset({"memory_budget_mb", "path"}),
    "SweepConfig": frozenset({"engine"}),
    "SimilarityConfig": frozenset({"batch_size"}),
    "CausalConfig": frozenset({"batch_size"}),
    "LapeConfig": frozenset({"batch_size"}),
    "AlignmentConfig": frozenset({"batch_size"}),
    "DemoConfig": frozenset({"device"}),
}


def speed_fields(config: Any) -> frozenset[str]:
    """The speed-only fields of the dataclass ``config`` (:data:`SPEED_FIELDS`), empty for any other object."""
    return SPEED_FIELDS.get(type(config).__name__, frozenset())


def _feed(obj: Any, given: Mapping[str, Any]) -> Any:
    """``obj`` with the speed fields of every config in it set from ``given`` (:meth:`ExecutionConfig.configure`)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        speed = speed_fields(obj)
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            if not f.init:
                continue  # dataclasses.replace cannot set it
            old = getattr(obj, f.name)
            if f.name in speed:
                if f.name in given and given[f.name] != old:
                    changes[f.name] = given[f.name]
                continue
            new = _feed(old, given)
            if new is not old:
                changes[f.name] = new
        return dataclasses.replace(obj, **changes) if changes else obj
    if isinstance(obj, Mapping):
        fed = {k: _feed(v, given) for k, v in obj.items()}
        if all(fed[k] is v for k, v in obj.items()):
            return obj
        try:
            return cast(Any, type(obj))(fed)
        except TypeError:  # a mapping type not made from a dict
            return fed
    if isinstance(obj, (tuple, list)):
        items = [_feed(v, given) for v in obj]
        if all(a is b for a, b in zip(items, obj, strict=True)):
            return obj
        return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)  # a named tuple: by position
    return obj


def check_speed_fields(classes: Sequence[type]) -> list[str]:
    """``Class.field`` of every :data:`SPEED_FIELDS` entry that is not an execution setting or not a field of its class."""
    known = {c.__name__: {f.name for f in dataclasses.fields(c)} for c in classes}
    return [
        f"{name}.{field}"
        for name, fields in SPEED_FIELDS.items()
        for field in sorted(fields)
        if field not in SPEED_OPTIONS or (name in known and field not in known[name])
    ]
