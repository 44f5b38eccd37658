"""Resumable shard store, sharded sweeps under torchrun, and resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from lrp2_interp.store import ShardStore


def test_store_skips_finished_units(tmp_path):
    store = ShardStore(tmp_path)
    calls = []

    def unit(i):
        def compute():
            calls.append(i)
            return pd.DataFrame({"i": [i]})

        return compute

    keys = store.run([(f"u{i}", unit(i)) for i in range(4)])
    assert calls == [0, 1, 2, 3]
    store.path("u2").unlink()  # as if the run had died before unit 2 was written
    store.run([(f"u{i}", unit(i)) for i in range(4)])
    assert calls == [0, 1, 2, 3, 2]
    assert store.merge(keys)["i"].tolist() == [0, 1, 2, 3]


def test_store_shards_units_by_rank(tmp_path):
    store = ShardStore(tmp_path)
    units = [(f"u{i}", (lambda i=i: pd.DataFrame({"i": [i]}))) for i in range(5)]
    store.run(units, rank=1, world=2)
    assert store.keys() == ["u1", "u3"]
    store.run(units, rank=0, world=2)
    assert store.merge([k for k, _ in units])["i"].tolist() == [0, 1, 2, 3, 4]


def test_merge_reports_missing_shards(tmp_path):
    with pytest.raises(FileNotFoundError, match="1 shard"):
        ShardStore(tmp_path).merge(["nope"])


def test_bad_shard_key_rejected(tmp_path):
    with pytest.raises(ValueError):
        ShardStore(tmp_path).path("../escape")


# ------------------------------------------------------------------ end to end (slow)
SWEEP = ["sweep", "--language", "fr", "--relations", "P36", "P30", "P17", "--max-facts", "10", "--unit-facts", "4"]


def _sweep_cmd(model: Path, out: Path, torchrun: int = 0) -> list[str]:
    args = [*SWEEP, "--model", str(model), "--out", str(out)]
    if torchrun:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={torchrun}",
            "-m",
            "lrp2_interp.cli.main",
            *args,
        ]
    return [sys.executable, "-m", "lrp2_interp.cli.main", *args]


@pytest.fixture(scope="module")
def bloom_dir(repo_model_dir) -> Path:
    return repo_model_dir("bloom", n_layers=4)


def _env() -> dict:
    return dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _final(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "sweep_fr.csv").sort_values(["condition"]).reset_index(drop=True)


@pytest.mark.slow
def test_torchrun_two_processes_match_single_process(bloom_dir, tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    subprocess.run(_sweep_cmd(bloom_dir, single), check=True, env=_env(), capture_output=True, timeout=600)
    proc = subprocess.run(
        _sweep_cmd(bloom_dir, multi, torchrun=2), env=_env(), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    pd.testing.assert_frame_equal(_final(single), _final(multi))


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_table(bloom_dir, tmp_path):
    ref, resumed = tmp_path / "ref", tmp_path / "resumed"
    subprocess.run(_sweep_cmd(bloom_dir, ref), check=True, env=_env(), capture_output=True, timeout=600)
    n_units = len(list((ref / "shards").glob("[!.]*.parquet")))  # 30 facts in units of 4
    assert n_units >= 6
    proc = subprocess.Popen(
        _sweep_cmd(bloom_dir, resumed), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    shards = resumed / "shards"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(shards.glob("[!.]*.parquet"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = len(list(shards.glob("[!.]*.parquet")))
    assert 3 <= n_before < n_units, f"the run must be killed mid-way ({n_units} units in all)"
    assert not (resumed / "sweep_fr.csv").exists()
    finished = {p.name: p.stat().st_mtime_ns for p in shards.glob("[!.]*.parquet")}
    subprocess.run(_sweep_cmd(bloom_dir, resumed), check=True, env=_env(), capture_output=True, text=True, timeout=600)
    pd.testing.assert_frame_equal(_final(ref), _final(resumed))
    for name, mtime in finished.items():  # finished shards were skipped, not recomputed
        assert (shards / name).stat().st_mtime_ns == mtime


# ------------------------------------------------------------------ issue 11: results-folder manifest
def test_manifest_written_then_same_accepted_other_refused(tmp_path):
    from lrp2_interp.errors import InputError
    from lrp2_interp.manifest import MANIFEST, check_manifest

    m = {"config": {"relations": ["P36", "P30"], "max_facts": 5}, "model": {"weights_sha256": "a"}}
    check_manifest(tmp_path, m)
    assert (tmp_path / MANIFEST).is_file()
    check_manifest(tmp_path, json.loads(json.dumps(m)))  # the same run resumes
    with pytest.raises(
        InputError, match=r'differs in: config\.max_facts: 5 -> 4; config\.relations: \["P36", "P30"\]'
    ) as err:
        check_manifest(tmp_path, {"config": {"relations": ["P30"], "max_facts": 4}, "model": {"weights_sha256": "a"}})
    assert err.value.file == str(tmp_path) and "\n" not in str(err.value)


def test_legacy_shards_without_manifest_refused(tmp_path):
    from lrp2_interp.errors import InputError
    from lrp2_interp.manifest import check_manifest

    ShardStore(tmp_path / "control").write("fr-baseline", pd.DataFrame({"x": [1]}))
    with pytest.raises(InputError, match=r"no manifest\.json"):
        check_manifest(tmp_path, {"config": {}})
    assert not (tmp_path / "manifest.json").exists()


def test_model_fingerprint_sees_a_change_in_any_layer(bert_lm):
    import torch

    from lrp2_interp.manifest import model_fingerprint

    before = model_fingerprint(bert_lm)
    param = dict(bert_lm.bridge.original_model.named_parameters())
    name = sorted(n for n in param if ".2." in n and n.endswith("weight"))[0]  # a weight of the last layer
    with torch.no_grad():
        param[name].add_(1.0)
    try:
        assert model_fingerprint(bert_lm)["weights_sha256"] != before["weights_sha256"]
    finally:
        with torch.no_grad():
            param[name].sub_(1.0)
    assert model_fingerprint(bert_lm) == before


def test_vectors_digest_is_provenance_not_float_bits():
    """Recomputing the same vectors (e.g. with another thread count) may change last bits: still the same run
    (loaded vectors are identified by their content: tests/test_adversarial.py)."""
    import torch

    from lrp2_interp.lrp2.vectors import LanguageVectors
    from lrp2_interp.manifest import vectors_digest

    v = {"en": torch.ones(2, 3), "fr": torch.zeros(2, 3)}
    a = LanguageVectors("m", 2, 3, v, corpus={"en": "probe prompts", "fr": "probe prompts"})
    b = LanguageVectors("m", 2, 3, {k: x + 1e-7 for k, x in v.items()}, corpus=dict(a.corpus))
    c = LanguageVectors("m", 2, 3, v, corpus={"en": "probe prompts", "fr": "opus.fr.txt (first 10 lines)"})
    assert vectors_digest(a) == vectors_digest(b) != vectors_digest(c) and vectors_digest(None) is None


def test_a_memory_store_runs_the_same_units_and_writes_nothing(tmp_path, monkeypatch):
    from lrp2_interp.store import MemoryStore

    monkeypatch.chdir(tmp_path)
    calls = []

    def unit(i):
        def compute():
            calls.append(i)
            return pd.DataFrame({"i": [i]})

        return compute

    units = [(f"u{i}", unit(i)) for i in range(3)]
    disk, memory = ShardStore(tmp_path / "disk"), MemoryStore()
    assert disk.run(units) == memory.run(units) == ["u0", "u1", "u2"]
    pd.testing.assert_frame_equal(memory.merge(), disk.merge())
    memory.run(units)  # stored units are not computed again
    assert calls == [0, 1, 2, 0, 1, 2]
    assert memory.child("a", "b") is memory.child("a", "b") and not memory.child("a", "b").keys()
    memory.guard({"anything": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk"]


def test_a_store_child_is_a_subfolder_and_its_guard_records_the_run_under_way(tmp_path):
    from lrp2_interp.errors import InputError

    store = ShardStore(tmp_path, record={"model": "m"})
    assert store.child("units", "fr").root == tmp_path / "units" / "fr" and store.child("x").record is None
    store.guard({"config": {"a": 1}})
    assert json.loads((tmp_path / "run.json").read_text()) == {"model": "m", "complete": False}
    with pytest.raises(InputError, match=r"config\.a: 1 -> 2"):
        ShardStore(tmp_path, record={"model": "other"}).guard({"config": {"a": 2}})
    assert json.loads((tmp_path / "run.json").read_text())["model"] == "m"  # a refused run writes nothing
