"""Offline pretrained models: checksum, one conversion into a cached folder, reuse, clean failures.

Fast tests replace the package and the de-quantization with tiny stand-ins, so the cache
logic (temp folder + rename, marker, reuse, errors) is exercised without the 238 MB file;
``test_gemma.py`` runs the real package.
"""

from __future__ import annotations

import hashlib
import sys
import types
from pathlib import Path

import pytest

from lrp2_interp.errors import InputError
from lrp2_interp.models import offline as om
from lrp2_interp.models.loading import load_model


@pytest.fixture
def fake_model(tmp_path, monkeypatch, tiny_model_dir):
    """An offline name 'fake-lm' whose package assembles a small file; de-quantizing loads a tiny gemma3."""
    gguf = tmp_path / "pkg" / "fake.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"not really gguf")
    package = types.ModuleType("fake_lm_pkg")
    package.assemble = lambda: gguf
    monkeypatch.setitem(sys.modules, "fake_lm_pkg", package)
    spec = om.OfflineModel("fake-lm", "fake_lm_pkg", "fake", hashlib.sha256(gguf.read_bytes()).hexdigest(), "test")
    monkeypatch.setitem(om.OFFLINE_MODELS, "fake-lm", spec)
    monkeypatch.setenv("LRP2_CACHE", str(tmp_path / "cache"))
    calls = []

    def dequantize(path, spec):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        calls.append(path)
        src = tiny_model_dir("gemma3")
        return AutoModelForCausalLM.from_pretrained(src), AutoTokenizer.from_pretrained(src)

    monkeypatch.setattr(om, "dequantize", dequantize)
    return spec, calls


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_first_load_converts_once_and_later_loads_reuse_the_cache(fake_model):
    spec, calls = fake_model
    lm = load_model("fake-lm")
    assert lm.name == "fake-lm" and lm.kind == "causal" and len(calls) == 1
    folder = om.cache_dir_of(spec)
    assert folder.is_dir() and (folder / "config.json").is_file()
    assert spec.sha256[:16] in folder.name  # keyed by the checksum
    assert _leftovers(folder.parent) == [folder.name]  # no temp folder left behind
    again = load_model("fake-lm")
    assert len(calls) == 1 and again.n_layers == lm.n_layers  # reused, not converted again


def test_checksum_mismatch_is_one_clear_error_and_writes_nothing(fake_model, monkeypatch):
    spec, calls = fake_model
    monkeypatch.setitem(om.OFFLINE_MODELS, "fake-lm", om.OfflineModel(spec.name, spec.package, "fake", "0" * 64, ""))
    with pytest.raises(InputError) as err:
        load_model("fake-lm")
    assert err.value.field == "sha256" and "checksum mismatch" in str(err.value) and "\n" not in str(err.value)
    assert not calls and _leftovers(om.cache_root()) == []


def test_missing_extra_names_the_pip_command(fake_model, monkeypatch):
    monkeypatch.delitem(sys.modules, "fake_lm_pkg")
    with pytest.raises(InputError) as err:
        load_model("fake-lm")
    assert 'pip install -e ".[fake]"' in str(err.value)


@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError(28, "No space left on device")])
def test_interrupted_or_failed_conversion_leaves_no_half_written_folder(fake_model, monkeypatch, failure):
    from transformers import PreTrainedTokenizerFast

    def broken_save(self, *a, **k):
        Path(a[0], "partial.bin").write_bytes(b"x")
        raise failure

    monkeypatch.setattr(PreTrainedTokenizerFast, "save_pretrained", broken_save)
    expected = KeyboardInterrupt if failure is KeyboardInterrupt else InputError
    with pytest.raises(expected) as err:
        load_model("fake-lm")
    if expected is InputError:
        assert "No space left" in str(err.value)
    assert _leftovers(om.cache_root()) == []


def test_a_cache_folder_without_the_finished_marker_is_rebuilt(fake_model):
    spec, calls = fake_model
    folder = om.cache_dir_of(spec)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")  # e.g. copied by hand, half-finished
    load_model("fake-lm")
    assert len(calls) == 1 and (folder / "model.safetensors").is_file()


def test_unknown_offline_name_is_an_input_error():
    with pytest.raises(InputError):
        om.resolve_offline_model("no-such-offline-model")
