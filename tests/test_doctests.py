"""The ``>>>`` examples of the front-door functions run, on a tiny random model built from the shipped facts."""

from __future__ import annotations

import doctest
import importlib

import pytest

import lrp2_interp as lx

#: modules whose docstrings hold front-door examples (they use ``lx``, ``facts``, ``lm``, ``vec``)
MODULES = [
    "lrp2_interp.lrp2.front",
    "lrp2_interp.probing.probe",
    "lrp2_interp.attribution.attribute",
    "lrp2_interp.lrp2.similarity",
]

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def front_globals(tmp_path_factory) -> dict:
    """The objects the examples share, built as :mod:`lrp2_interp.lrp2.front`'s module docstring builds them."""
    facts = lx.load_facts(languages=["en", "fr"], max_facts_per_relation=3)
    folder = lx.build_random_model(
        lx.RandomModelConfig(family="gpt2"), lx.fact_sentences(facts), tmp_path_factory.mktemp("m")
    )
    lm = lx.load_model(folder)
    return {"lx": lx, "facts": facts, "lm": lm, "vec": lx.language_vectors(lm, facts)}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, front_globals):
    import matplotlib.pyplot as plt

    module = importlib.import_module(name)
    try:
        result = doctest.testmod(module, extraglobs=front_globals, optionflags=doctest.ELLIPSIS, verbose=False)
    finally:
        plt.close("all")
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (output above)"


def test_a_wrong_example_fails(front_globals):
    """The harness is not vacuous: an example whose output is wrong is reported."""
    import types

    fake = types.ModuleType("fake")
    fake.__doc__ = ">>> lm.n_layers\n99\n"
    result = doctest.testmod(fake, extraglobs=front_globals, report=False)
    assert (result.failed, result.attempted) == (1, 1)
