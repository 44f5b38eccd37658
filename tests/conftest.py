"""Shared fixtures: tiny random models of every supported family and small fact sets.

Fixtures (all session-scoped, all offline):

* ``tiny_model_dir(family, **overrides)`` -- factory: builds (once per distinct
  argument set) a random model with :func:`lrp2_interp.models.builders.build_random_model`
  from :data:`TINY` sizes and the fixture-fact corpus, returns its directory;
* ``bert_lm``, ``bloom_lm``, ``gpt2_lm``, ``qwen2_lm`` -- those models loaded
  with :func:`lrp2_interp.models.loading.load_model` (treat them as read-only: leave no
  hooks behind, use ``monkeypatch`` for any patching);
* ``repo_model_dir(family, **overrides)`` -- the same, with a tokenizer trained on the
  shipped ``data/facts`` (all six languages; used by the CLI and sharding tests);
* ``tiny_corpus`` / ``tiny_sizes`` -- what those models are built from;
* ``fixture_facts_root`` / ``fixture_facts`` -- the hand-written en/fr/ru set in
  ``tests/fixtures/facts`` (see its README for its deliberate irregularities);
* ``shared_facts`` -- the path ``../shared/data/facts`` beside the checkout;
  skips the test when that folder is absent;
* under pytest-xdist (``-n N``) each worker's torch gets ``cores // N`` threads, so N workers
  share the machine instead of each one taking every core;
* ``single_thread`` -- opt-in (``pytest.mark.usefixtures``): torch on one thread
  for the duration of a module's tests (tiny models run fastest that way).
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported anywhere
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

TESTS_DIR = Path(__file__).resolve().parent
FIXTURE_FACTS = TESTS_DIR / "fixtures" / "facts"
SHARED_FACTS = Path(__file__).parents[1].parent / "shared" / "data" / "facts"

#: sizes of every tiny model (3 layers so LRP2 can use m < n and hooks in the middle)
TINY = dict(n_layers=3, d_model=32, n_heads=4, d_mlp=64, max_positions=128)
TOKENIZER_VOCAB = 600


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, give each worker's torch its share of the cores (no oversubscription)."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        share = max(1, (os.cpu_count() or 1) // int(workers))
        torch.set_num_threads(share)
        os.environ["OMP_NUM_THREADS"] = str(share)  # subprocesses the tests start (torchrun, notebooks)


#: test files that build an expensive cache (the default organism, the converted Gemma) and run longest:
#: collected first, so that under ``-n auto --dist loadfile`` they start at once on their own workers
#: instead of last (a stable sort: every other test keeps its order)
FIRST_FILES = ("test_demo.py", "test_gemma.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in FIRST_FILES)


def fixture_corpus(root: Path = FIXTURE_FACTS) -> list[str]:
    """Every fact of the fixture set as a filled sentence, in every language (tokenizer corpus)."""
    from lrp2_interp.facts import load_facts
    from lrp2_interp.prompts import fact_sentences

    return fact_sentences(load_facts(root))


@pytest.fixture(scope="session")
def tiny_corpus() -> list[str]:
    """The tokenizer-training corpus of every tiny model (fixture facts as sentences)."""
    return fixture_corpus()


@pytest.fixture(scope="session")
def tiny_sizes() -> dict:
    """The :class:`RandomModelConfig` sizes of every tiny model (a copy: edit freely)."""
    return dict(TINY)


@pytest.fixture(scope="session")
def fixture_facts_root() -> Path:
    return FIXTURE_FACTS


@pytest.fixture(scope="session")
def fixture_facts(fixture_facts_root):
    from lrp2_interp.facts import load_facts

    return load_facts(fixture_facts_root)


@pytest.fixture(scope="session")
def shared_facts() -> Path:
    if not (SHARED_FACTS / "en" / "templates.jsonl").is_file():
        pytest.skip(f"shared fact data not found at {SHARED_FACTS}")
    return SHARED_FACTS


def _model_factory(tmp_path_factory, corpus: list[str], prefix: str, **build_kw) -> Callable[..., Path]:
    """``make(family, **RandomModelConfig overrides) -> Path``, building each distinct model once."""
    from lrp2_interp.models.builders import RandomModelConfig, build_random_model

    cache: dict[tuple, Path] = {}

    def make(family: str, **overrides) -> Path:
        key = (family, tuple(sorted(overrides.items())))
        if key not in cache:
            cfg = RandomModelConfig(family=family, **{**TINY, **overrides})
            suffix = "-".join(f"{k}{v}" for k, v in sorted(overrides.items()))
            out = tmp_path_factory.mktemp(f"{prefix}-{family}{'-' + suffix if suffix else ''}")
            cache[key] = build_random_model(cfg, corpus, out, **build_kw)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_corpus) -> Callable[..., Path]:
    """Factory ``tiny_model_dir(family, **RandomModelConfig overrides) -> Path`` (cached per arguments)."""
    return _model_factory(tmp_path_factory, list(tiny_corpus), "tiny", tokenizer_vocab_size=TOKENIZER_VOCAB)


def repo_corpus() -> list[str]:
    """Every fact of the shipped ``data/facts`` as a filled sentence, in every language."""
    from lrp2_interp.cli.main import REPO_DATA

    return fixture_corpus(REPO_DATA)


@pytest.fixture(scope="session")
def repo_model_dir(tmp_path_factory) -> Callable[..., Path]:
    """Factory ``repo_model_dir(family, **overrides) -> Path``: tiny models whose tokenizer saw ``data/facts``."""
    return _model_factory(tmp_path_factory, repo_corpus(), "repo")


def _load(directory: Path):
    from lrp2_interp.models.loading import load_model

    return load_model(directory)


@pytest.fixture(scope="session")
def bert_lm(tiny_model_dir):
    return _load(tiny_model_dir("bert"))


@pytest.fixture(scope="session")
def bloom_lm(tiny_model_dir):
    return _load(tiny_model_dir("bloom"))


@pytest.fixture(scope="session")
def gpt2_lm(tiny_model_dir):
    return _load(tiny_model_dir("gpt2"))


@pytest.fixture(scope="session")
def qwen2_lm(tiny_model_dir):
    return _load(tiny_model_dir("qwen2"))


@pytest.fixture(scope="module")
def single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """A test may change torch's thread count; the next test starts with the original one."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def pool_count(monkeypatch) -> Counter:
    """(language, relation) -> how often its entity distractors were drawn: each candidate-pool computation
    of entity-distractor facts draws them once per relation."""
    from lrp2_interp.probing import types

    seen: Counter = Counter()
    real = types.entity_pools

    def counted(facts, language, relation, config):
        seen[(language, relation)] += 1
        return real(facts, language, relation, config)

    monkeypatch.setattr(types, "entity_pools", counted)
    return seen
