"""The model organism's configuration: :class:`OrganismConfig`, its cache folder and the facts it is trained on.

Everything that determines the trained organism is in :class:`OrganismConfig`;
:func:`config_hash` (config + fact data) names its cache folder
(:func:`organism_dir`, under ``LRP2_CACHE`` or ``~/.cache/lrp2_interp``), so a
trained organism is found again whenever the config and the data are the same.
Training itself is :mod:`lrp2_interp.organism.train`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

from lrp2_interp.facts import FactSet, load_facts, shipped_facts_root
from lrp2_interp.organism.training_corpus import BridgeConfig

OrganismKind = Literal["causal", "masked"]
FORMAT_VERSION = 1


def default_facts_root() -> Path:
    """The shipped ``data/facts`` (package data in a wheel; see :func:`lrp2_interp.facts.shipped_facts_root`)."""
    return shipped_facts_root()


def default_cache_dir() -> Path:
    env = os.environ.get("LRP2_CACHE")
    base = Path(env).expanduser() if env else Path("~/.cache/lrp2_interp").expanduser()
    return base / "organisms"


@dataclass(frozen=True)
class OrganismConfig:
    """Everything that determines the organism (its hash names the cache folder)."""

    facts_root: str | None = None  # None: the repository's data/facts
    languages: tuple[str, ...] = ("en", "fr", "es", "nl", "ru", "zh")
    relations: tuple[str, ...] | None = None  # None: every relation present
    max_facts_per_relation: int | None = None
    kind: OrganismKind = "causal"
    n_layers: int = 4
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    max_positions: int = 96
    vocab_size: int = 2000
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    dropout: float = 0.0
    mask_object_prob: float = 0.5  # masked kind: mask the whole object span in this share of fact lines
    mask_prob: float = 0.15  # masked kind: random token masking otherwise
    seen_fraction: float = 0.5
    bridge: BridgeConfig = field(default_factory=lambda: BridgeConfig(mix_entities=True))
    seed: int = 0

    def facts_path(self) -> Path:
        return Path(self.facts_root).expanduser() if self.facts_root else default_facts_root()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["facts_root"] = str(self.facts_path())
        return d

    @classmethod
    def from_dict(cls, d: dict) -> OrganismConfig:
        d = dict(d)
        d["bridge"] = BridgeConfig(**d.get("bridge", {}))
        for key in ("languages", "relations"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)


def load_organism_facts(config: OrganismConfig) -> FactSet:
    return load_facts(
        config.facts_path(),
        list(config.languages),
        list(config.relations) if config.relations else None,
        max_facts_per_relation=config.max_facts_per_relation,
        seed=config.seed,
    )


def data_digest(facts: FactSet) -> str:
    h = hashlib.sha256()
    for lang in facts.languages:
        for rel in facts.relations:
            if (lang, rel) in facts.templates:
                h.update(f"{lang}|{rel}|{facts.template(lang, rel).template}\n".encode())
            for f in facts.facts_of(lang, rel):
                h.update(f"{f.lineid}|{f.sub_label}|{f.obj_label}|{'|'.join(f.obj_aliases)}\n".encode())
    return h.hexdigest()[:16]


def config_hash(config: OrganismConfig, facts: FactSet | None = None) -> str:
    """Hash of the config and of the fact data it is trained on."""
    facts = facts if facts is not None else load_organism_facts(config)
    payload = json.dumps({"v": FORMAT_VERSION, "config": config.to_dict(), "data": data_digest(facts)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def organism_dir(config: OrganismConfig, cache_dir: str | Path | None = None, facts: FactSet | None = None) -> Path:
    return Path(cache_dir or default_cache_dir()) / config_hash(config, facts)


def with_overrides(config: OrganismConfig, **kw) -> OrganismConfig:
    """``dataclasses.replace`` that also accepts ``bridge_*`` keys for the bridge config."""
    bridge = {k[len("bridge_") :]: kw.pop(k) for k in list(kw) if k.startswith("bridge_")}
    if bridge:
        kw["bridge"] = replace(config.bridge, **bridge)
    return replace(config, **kw)
