"""The front door: ``import lrp2_interp as lx`` reaches every public name, with no name shadowed by a module."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
from types import ModuleType

import lrp2_interp as lx
from lrp2_interp.facts import shipped_facts_root


def test_the_lrp2_context_manager_is_not_shadowed_by_the_lrp2_subpackage():
    """``from lrp2_interp import lrp2`` gave the subpackage once it was imported, not the context manager."""
    import lrp2_interp.lrp2.similarity  # noqa: F401  (imports the subpackage, which becomes lx.lrp2)
    from lrp2_interp import apply_lrp2
    from lrp2_interp.lrp2.front import apply_lrp2 as defined

    assert apply_lrp2 is lx.apply_lrp2 is defined
    assert callable(apply_lrp2) and not isinstance(apply_lrp2, ModuleType)
    assert inspect.isgeneratorfunction(inspect.unwrap(apply_lrp2))  # a @contextmanager
    assert isinstance(lx.lrp2, ModuleType)  # the name lrp2 means the subpackage, always


def test_no_public_name_is_also_a_module_of_the_package():
    shadowed = [name for name in lx.__all__ if importlib.util.find_spec(f"lrp2_interp.{name}") is not None]
    assert not shadowed, f"public names that a submodule import would replace: {shadowed}"


def test_every_public_name_resolves():
    missing = [name for name in lx.__all__ if name != "__version__" and getattr(lx, name, None) is None]
    assert not missing


def test_subpackages_load_on_access_and_unknown_names_fail():
    assert isinstance(lx.plots, ModuleType) and lx.plots.similarity_plot is lx.similarity_plot
    try:
        lx.no_such_name
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("an unknown name resolved")


def test_import_does_no_work():
    code = "import sys, lrp2_interp; print('torch' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_load_facts_defaults_to_the_shipped_facts():
    facts = lx.load_facts(languages=["en", "fr"])
    assert facts.root == shipped_facts_root() and facts.languages == ("en", "fr") and facts.n_facts("fr") > 0
