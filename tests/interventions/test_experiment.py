"""The LRP2 experiment's held-out design (the default): test facts probed only at the baseline, the choice and its
controls; resumable; another run's settings refused; the oracle labelled optimistic; the full grid still reachable."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lrp2_interp.errors import InputError
from lrp2_interp.facts import load_facts, shipped_facts_root
from lrp2_interp.interventions.experiment import (
    HELDOUT,
    OPTIMISTIC,
    HeldoutResult,
    run_experiment,
    wrong_languages,
)
from lrp2_interp.lrp2.full_grid import ExperimentConfig, ExperimentResult, run_full_grid
from lrp2_interp.models.loading import load_model
from lrp2_interp.probing.types import ProbeConfig

pytestmark = pytest.mark.usefixtures("single_thread")

#: small enough to run in seconds, large enough for two halving rungs (10 pairs on 4 dev facts, then 4 on 12)
SMALL = dict(max_dev=12, max_test=10, first_rung=4, eta=3, n_controls=2, n_boot=30, probe=ProbeConfig(max_candidates=5))
OUTPUTS = ("summary.csv", "summary.md", "search_fr.csv", "search_es.csv", "facts_fr.parquet", "facts_es.parquet")


@pytest.fixture(scope="module")
def lm(repo_model_dir):
    return load_model(str(repo_model_dir("gpt2", n_layers=4)))


@pytest.fixture(scope="module")
def facts():
    return load_facts(shipped_facts_root(), ["en", "fr", "es"], max_facts_per_relation=8)


def _config(**kw) -> ExperimentConfig:
    return ExperimentConfig(**{"languages": ("fr", "es"), **SMALL, **kw})


def _outputs(folder) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in OUTPUTS}


def test_the_default_searches_dev_facts_by_halving_and_probes_test_facts_only_at_the_choice_and_controls(
    lm, facts, tmp_path
):
    cfg = _config()
    assert cfg.design == "heldout" and cfg.search == "halving"
    res = run_experiment(lm, facts, cfg, tmp_path, progress=False)
    assert isinstance(res, HeldoutResult)
    for lang, wrong in (("fr", "es"), ("es", "fr")):  # the wrong language: the next target in sorted order
        table = pd.read_parquet(tmp_path / f"facts_{lang}.parquet")
        test = table[table["split"] == "test"]
        assert set(test["condition"]) == {
            "baseline",
            "chosen",
            "source baseline",
            "matched control 0",
            "matched control 1",
            f"wrong language ({wrong})",
        }
        dev_keys = set(zip(*(table.loc[table["split"] == "dev", c] for c in ("relation", "lineid"))))
        assert not dev_keys & set(zip(test["relation"], test["lineid"]))  # the choice never saw a test fact
        search = pd.read_csv(tmp_path / f"search_{lang}.csv")
        rungs = search.groupby("rung").agg(n=("n_dev", "first"), k=("setting", "size"))
        assert rungs["n"].tolist() == [4, 12] and rungs["k"].tolist() == [10, 4]  # successive halving
        m, n = res.chosen(lang)
        assert res.selections[lang].chosen_label == f"({m}, {n})"
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary["language"]) == ["fr", "es"] and set(summary["selection"]) == {HELDOUT}
    assert list(summary["chosen_m"]) == [res.chosen("fr")[0], res.chosen("es")[0]]
    assert {"gain", "gain_low", "gain_high", "control_gain_mean", "trans_baseline"} <= set(summary.columns)
    md = (tmp_path / "summary.md").read_text()
    assert md.index("test gain [95% exact CI]") < md.index("## Full table")  # the headline table first
    full = res.work["full_grid"]
    assert res.work["fact_conditions"] < full and f"needs {full:,}" in md
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["complete"] is True and meta["config"]["design"] == "heldout" and meta["work"] == res.work
    assert meta["selection"]["probe"]["distractors"] == "entity"


def test_a_killed_run_resumes_to_identical_output(lm, facts, tmp_path, monkeypatch):
    from lrp2_interp.interventions.scoring import Scorer

    cfg = _config()
    run_experiment(lm, facts, cfg, tmp_path / "whole", progress=False)
    compute = Scorer._compute
    calls = {"n": 0}

    class Killed(Exception):
        pass

    def dies_after_five(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] > 5:
            raise Killed
        return compute(self, *a, **kw)

    monkeypatch.setattr(Scorer, "_compute", dies_after_five)
    with pytest.raises(Killed):
        run_experiment(lm, facts, cfg, tmp_path / "resumed", progress=False)
    assert not (tmp_path / "resumed" / "summary.csv").exists()

    def counted(self, *a, **kw):
        calls["n"] += 1
        return compute(self, *a, **kw)

    monkeypatch.setattr(Scorer, "_compute", counted)
    calls["n"] = 0
    run_experiment(lm, facts, cfg, tmp_path / "resumed", progress=False)
    resumed = calls["n"]
    calls["n"] = 0
    run_experiment(lm, facts, cfg, tmp_path / "again", progress=False)
    assert resumed == calls["n"] - 5  # the five stored units were read back, not computed again
    assert _outputs(tmp_path / "resumed") == _outputs(tmp_path / "whole")


def test_a_changed_selection_setting_refuses_the_resume(lm, facts, tmp_path):
    run_experiment(lm, facts, _config(n_controls=1), tmp_path, progress=False)
    before = _outputs(tmp_path)
    with pytest.raises(InputError, match=r"differs in: config\.n_controls: 1 -> 2\)") as err:
        run_experiment(lm, facts, _config(n_controls=2), tmp_path, progress=False)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match=r"config\.search"):
        run_experiment(lm, facts, _config(n_controls=1, search="full"), tmp_path, progress=False)
    assert _outputs(tmp_path) == before
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    del manifest["units"]  # a folder of units named before the baselines were shared by a language pair
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=r"differs in: units"):
        run_experiment(lm, facts, _config(n_controls=1), tmp_path, progress=False)
    assert _outputs(tmp_path) == before


def test_the_oracle_is_labelled_optimistic(lm, facts, tmp_path):
    res = run_experiment(lm, facts, _config(search="oracle"), tmp_path, progress=False)
    assert isinstance(res, HeldoutResult)
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert set(summary["selection"]) == {OPTIMISTIC}
    md = (tmp_path / "summary.md").read_text()
    assert OPTIMISTIC in md.split("## Full table")[0] and "biased upward" in md
    table = res.selections["fr"].facts_table
    searched = set(zip(*(table.loc[table["split"] == "dev", c] for c in ("relation", "lineid"))))
    tested = set(zip(*(table.loc[table["split"] == "test", c] for c in ("relation", "lineid"))))
    assert tested <= searched  # chosen on the test facts too: why it is optimistic


def test_the_full_grid_stays_reachable_and_is_asked_for_by_name(lm, facts, tmp_path):
    cfg = _config(design="full-grid", layers=(0, 2), languages=("fr",))
    res = run_experiment(lm, facts, cfg, tmp_path, progress=False)
    assert isinstance(res, ExperimentResult) and (tmp_path / "sweep_fr_gain.png").is_file()
    with pytest.raises(InputError, match="design='full-grid'"):
        run_full_grid(lm, facts, _config(), tmp_path / "other", progress=False)
    assert not (tmp_path / "other").exists()


def test_wrong_language_is_the_next_target_in_sorted_order():
    assert wrong_languages(["zh", "fr", "ru"]) == {"zh": "fr", "fr": "ru", "ru": "zh"}
    assert wrong_languages(["fr"]) == {"fr": None}


def test_the_held_out_experiment_computes_without_writing_and_its_save_writes_the_runners_files(
    lm, facts, tmp_path, monkeypatch
):
    """heldout_experiment writes nothing; HeldoutResult.save writes the tables run_experiment leaves (same
    bytes), and run.json is the runner's: complete only at the end."""
    from lrp2_interp.interventions.experiment import heldout_experiment

    cfg = _config(n_controls=1)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    res = heldout_experiment(lm, facts, cfg, progress=False)
    assert not any(tmp_path.rglob("*.*")), "the experiment wrote a file"
    res.save(tmp_path / "saved")
    ran = run_experiment(lm, facts, cfg, tmp_path / "run", progress=False)
    assert isinstance(ran, HeldoutResult)
    assert _outputs(tmp_path / "saved") == _outputs(tmp_path / "run")
    assert not (tmp_path / "saved" / "run.json").exists()
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert list(meta)[-1] == "complete" and meta["complete"] is True
    assert meta["work"] == res.work and set(meta["n_facts"]) == {"fr", "es"}
    # run.json counts each language's rankable facts, not only those the dev/test caps kept (as before the split)
    assert meta["n_facts"]["fr"] == facts.n_facts("fr") > sum(res.selections["fr"].work[k] for k in ("n_dev", "n_test"))
    pd.testing.assert_frame_equal(res.selections["fr"].facts_table, ran.selections["fr"].facts_table)


def test_a_run_under_way_says_so_in_run_json(lm, facts, tmp_path, monkeypatch):
    """run.json reads complete: false from the moment the folder passed its guard until the results are saved."""
    import lrp2_interp.interventions.experiment as experiment

    seen = []

    def stop(*args, **kwargs):
        seen.append(json.loads((tmp_path / "run.json").read_text())["complete"])
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "select_and_score", stop)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(lm, facts, _config(n_controls=1), tmp_path, progress=False)
    assert seen == [False] and json.loads((tmp_path / "run.json").read_text())["complete"] is False
