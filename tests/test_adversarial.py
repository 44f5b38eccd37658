"""Adversarial inputs of issue 23, one parametrised test per class, on tiny models (fast: every CI run).

Classes: non-finite numbers refused where they enter; upper bounds, Ctrl-C and the former tracebacks as
one line and exit 2 (130 for Ctrl-C); facts keyed by (relation, lineid); messages that name the right
field, file and fix; the Python API's silent resolutions.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from lrp2_interp.cli.checks import check_finite, parse_lrp2
from lrp2_interp.cli.main import command_parsers, main
from lrp2_interp.cli.options import finite_float
from lrp2_interp.errors import InputError
from lrp2_interp.facts import Fact, load_facts
from lrp2_interp.lrp2.projection import LRP2Config
from lrp2_interp.lrp2.vectors import LanguageVectors

FIXTURE_FACTS = Path(__file__).resolve().parent / "fixtures" / "facts"


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def _error_after_progress(capsys) -> str:
    """The one error line of a command that failed after its progress bars started (no traceback)."""
    err = capsys.readouterr().err
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.startswith("lrp2-interp:")]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def _float_options() -> list[tuple[str, str]]:
    """(command, flag) of every float option of every command (the parser's type for floats)."""
    out = []
    for name, parser in sorted(command_parsers().items()):
        for action in parser._actions:  # argparse keeps no public list of actions
            if action.type is finite_float or action.type is float:
                out.append((name, action.option_strings[0]))
    return out


FLOAT_OPTIONS = _float_options()


def _vectors(n_layers: int = 3, d_model: int = 32, fill: float = 0.5) -> LanguageVectors:
    vecs = {lang: torch.full((n_layers, d_model), fill) for lang in ("en", "fr")}
    emb = {lang: torch.zeros(d_model) for lang in ("en", "fr")}
    return LanguageVectors("m", n_layers, d_model, vecs, embeddings=emb)


# ------------------------------------------------------------------ 1. non-finite numbers refused where they enter
def test_there_are_float_options_to_check():
    assert ("align", "--ridge") in FLOAT_OPTIONS and len(FLOAT_OPTIONS) >= 8
    assert all(
        t is finite_float for t in [a.type for p in command_parsers().values() for a in p._actions] if t is float
    )


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
@pytest.mark.parametrize(("command", "flag"), FLOAT_OPTIONS)
def test_every_float_option_refuses_non_finite_values(command, flag, value, capsys):
    with pytest.raises(SystemExit) as ex:
        main([command, f"{flag}={value}"])
    assert ex.value.code == 2
    assert f"argument {flag}: must be a finite number" in capsys.readouterr().err


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [0.1, float("-inf")]])
def test_check_args_refuses_non_finite_floats_of_hand_made_options(value):
    with pytest.raises(InputError, match="finite") as err:
        check_finite(argparse.Namespace(command="x", some_rate=value))
    assert err.value.field == "--some-rate"


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_vectors_holding_non_finite_values_are_refused_at_load_naming_the_file(tmp_path, bad):
    vec = _vectors()
    vec.vectors["fr"][1, 3] = bad
    path = vec.save(tmp_path / "v")
    with pytest.raises(InputError, match="non-finite") as err:
        LanguageVectors.load(path)
    assert err.value.file == str(path) and err.value.field == "fr"


def test_vectors_computed_with_non_finite_states_are_refused(bert_lm, monkeypatch):
    import lrp2_interp.lrp2.vectors as vectors

    def nan_states(lm, sentences, **kw):
        return torch.full((len(sentences), lm.n_layers + 1, lm.d_model), float("nan"))

    monkeypatch.setattr(vectors, "mean_states", nan_states)
    with pytest.raises(InputError, match="non-finite") as err:
        vectors.compute_language_vectors(bert_lm, {"fr": ["a b"]}, corpus={"fr": "fr.txt"}, progress=False)
    assert err.value.file == "fr.txt" and err.value.field == "fr"


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_model_weights_with_non_finite_values_are_refused_at_load(tiny_model_dir, bad):
    from transformers import AutoModelForMaskedLM

    from lrp2_interp.models.loading import load_model

    folder = tiny_model_dir("bert")
    hf = AutoModelForMaskedLM.from_pretrained(folder)
    name, param = next(iter(hf.named_parameters()))
    with torch.no_grad():
        param.view(-1)[0] = bad
    with pytest.raises(InputError, match="non-finite") as err:
        load_model(folder, hf_model=hf)
    assert err.value.field == name and err.value.file == str(folder)


#: a weight deep inside a block: the bridge wraps its module, so its name there holds "._original_component"
DEEP_WEIGHT = "model.layers.0.mlp.up_proj.weight"


@pytest.mark.parametrize("source", ["in memory", "folder", "device_map"])
def test_a_non_finite_weight_deep_in_a_block_is_named_as_in_the_checkpoint(tiny_model_dir, tmp_path, source):
    from transformers import AutoModelForCausalLM

    from lrp2_interp.models.loading import load_model

    folder = tiny_model_dir("gemma3")
    hf = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        dict(hf.named_parameters())[DEEP_WEIGHT].view(-1)[3] = float("nan")
    if source == "in memory":
        load = lambda: load_model(folder, hf_model=hf)  # noqa: E731
    else:
        bad = tmp_path / "bad"
        hf.save_pretrained(bad)
        for f in folder.iterdir():  # the tokenizer's files
            if not (bad / f.name).exists():
                shutil.copy(f, bad / f.name)
        kw = {"device_map": {"": "cpu"}} if source == "device_map" else {}
        load = lambda: load_model(bad, **kw)  # noqa: E731
    with pytest.raises(InputError, match="non-finite") as err:
        load()
    assert err.value.field == DEEP_WEIGHT and f"'{DEEP_WEIGHT}' holds 1 non-finite" in str(err.value)


@pytest.mark.parametrize("device_map", [None, {"": "cpu"}])
def test_the_weights_are_checked_before_the_bridge_wraps_the_model(tiny_model_dir, monkeypatch, device_map):
    """check_loaded_weights sees the HF model's own parameter names, which the bridge's wrapping changes."""
    from transformers import AutoModelForCausalLM

    import lrp2_interp.models.loading as loading

    seen: list[list[str]] = []
    check = loading.check_loaded_weights

    def spy(hf_model, tokenizer, name):
        seen.append([n for n, _ in hf_model.named_parameters()])
        check(hf_model, tokenizer, name)

    monkeypatch.setattr(loading, "check_loaded_weights", spy)
    folder = tiny_model_dir("gemma3")
    lm = loading.load_model(folder, device_map=device_map)
    assert seen == [[n for n, _ in AutoModelForCausalLM.from_pretrained(folder).named_parameters()]]
    assert DEEP_WEIGHT in seen[0] and not any("_original_component" in n for n in seen[0])
    wrapped = [n for n, _ in lm.bridge.original_model.named_parameters()]
    assert any("_original_component" in n for n in wrapped)  # after wrapping the names differ: checked before


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_score_is_caught_before_ranking(bad):
    from lrp2_interp.probing.types import rank_row

    fact = Fact(7, "P36", "fr", "France", "Paris")
    assert rank_row(fact, ["Berlin", "Paris"], [-2.0, -1.0])["correct"]
    with pytest.raises(InputError, match="lineid 7: the score of candidate 'Berlin'") as err:
        rank_row(fact, ["Berlin", "Paris"], [bad, -1.0])
    assert err.value.file == "fr/P36.jsonl" and err.value.field == "score"


# ------------------------------------------------------------------ 2. bounds, Ctrl-C, the former tracebacks
@pytest.mark.parametrize(
    ("command", "flag"),
    [("run", "--n-boot"), ("compare", "--n-boot"), ("neurons", "--n-perm"), ("neurons", "--max-steps")],
)
def test_options_that_allocate_have_an_upper_bound(command, flag, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [command, "--model", str(tmp_path / "no-model"), flag, "50000000", "--out", str(out)]
    argv += ["--languages", "fr"] + (["--lrp2", "fr=0,1"] if command == "neurons" else [])
    assert main(argv) == 2
    assert f"field '{flag}': must be at most" in _one_error_line(capsys)
    assert not out.exists() and not capsys.readouterr().out


def test_ctrl_c_is_one_line_and_status_130(monkeypatch, tmp_path, capsys):
    import lrp2_interp.cli.main as cli_main

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main, "check_args", interrupted)
    assert main(["probe", "--model", "m", "--out", str(tmp_path / "o")]) == 130
    assert "interrupted" in _one_error_line(capsys)


@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_truncated_vectors_file_is_one_input_error_naming_it(tmp_path, keep):
    path = _vectors().save(tmp_path / "v")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InputError) as err:
        LanguageVectors.load(path)
    assert err.value.file == str(path)


@pytest.mark.parametrize(("n_layers", "d_model", "field"), [(5, 32, "n_layers"), (3, 16, "d_model")])
def test_vectors_of_another_model_name_the_file_and_the_size(bert_lm, tmp_path, n_layers, d_model, field):
    path = _vectors(n_layers, d_model).save(tmp_path / "v")
    with pytest.raises(InputError) as err:
        LanguageVectors.load(path).check_model(bert_lm)
    assert err.value.file == str(path) and err.value.field == field
    assert (f"{n_layers} layers" if field == "n_layers" else f"d_model {d_model}") in str(err.value)


def test_tokenizer_larger_than_the_embedding_table_is_refused_at_load(tiny_model_dir):
    from transformers import AutoModelForMaskedLM

    from lrp2_interp.models.loading import load_model

    folder = tiny_model_dir("bert")
    hf = AutoModelForMaskedLM.from_pretrained(folder)
    hf.resize_token_embeddings(50)
    with pytest.raises(InputError, match="embedding table only 50 rows") as err:
        load_model(folder, hf_model=hf)
    assert err.value.field == "vocab_size"


# ------------------------------------------------------------------ 3. facts keyed by (relation, lineid)
def _copy_facts(tmp_path: Path) -> Path:
    root = tmp_path / "facts"
    shutil.copytree(FIXTURE_FACTS, root)
    return root


def _renumber(path: Path, start: int) -> None:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = [json.dumps({**r, "lineid": start + i}, ensure_ascii=False) for i, r in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("languages", [["en"], ["fr"], ["en", "fr"]])
def test_lineids_repeated_across_relations_are_refused_naming_both_files(tmp_path, languages):
    root = _copy_facts(tmp_path)
    for lang in ("en", "fr"):  # both relations numbered from 1, as other mLAMA-layout sets may be
        for rel in ("P36", "P37"):
            _renumber(root / lang / f"{rel}.jsonl", 1)
    with pytest.raises(InputError, match="lineid 1 is used by two relations") as err:
        load_facts(root, languages, ["P36", "P37"])
    assert err.value.field == "lineid" and err.value.line == 1
    assert "P36.jsonl:1" in str(err.value) and err.value.file.endswith("P37.jsonl")


def test_a_lineid_in_different_relations_of_two_languages_is_refused(tmp_path):
    root = _copy_facts(tmp_path)
    _renumber(root / "en" / "P36.jsonl", 1000)
    _renumber(root / "fr" / "P37.jsonl", 1000)  # fr's P37 facts would pair with en's P36 facts
    with pytest.raises(InputError, match="lineid 1000 is used by two relations"):
        load_facts(root, ["en", "fr"], ["P36", "P37"])
    load_facts(root, ["en"], ["P36", "P37"])  # one language alone is consistent


# ------------------------------------------------------------------ 6. messages that name the right field and fix
def test_vectors_given_without_suffix_resolve_to_the_safetensors_file(tmp_path, capsys):
    _vectors().save(tmp_path / "V")
    argv = ["probe", "--model", str(tmp_path / "none"), "--vectors", str(tmp_path / "V"), "--out", str(tmp_path / "o")]
    argv += ["--languages", "fr", "--lrp2", "fr=0,1"]
    assert main(argv) == 2  # fails on the missing model, not on the vectors
    err = _one_error_line(capsys)
    assert "vector file not found" not in err and "none" in err


@pytest.mark.parametrize(("items", "pair"), [(["fr=-1,2"], (-1, 2)), (["fr=-1,-1"], (-1, -1)), (["-1", "2"], None)])
def test_the_embedding_shift_point_is_accepted_by_lrp2(items, pair):
    parsed = parse_lrp2(items, legacy=True)
    assert parsed.pairs.get("fr", parsed.every) == (pair or (-1, 2))


@pytest.mark.parametrize("languages", [None, ["en"]])
def test_facts_pointing_at_one_language_folder_explains_the_layout(languages):
    with pytest.raises(InputError, match=r"one language's folder.*the folder above it"):
        load_facts(FIXTURE_FACTS / "en", languages)


@pytest.mark.parametrize(("label", "field"), [("obj_label", "obj_label"), ("sub_label", "sub_label")])
def test_a_too_long_label_is_blamed_on_itself(bert_lm, tmp_path, label, field):
    from lrp2_interp.cli.inputs import check_fact_lengths

    root = _copy_facts(tmp_path)
    path = root / "en" / "P36.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows[0][label] = " ".join(["Paris"] * 200)  # a label of 200+ tokens, the other one short
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="positions") as err:
        check_fact_lengths(bert_lm, load_facts(root, ["en"], ["P36"]))
    assert err.value.field == field and err.value.file == str(path)


def test_a_short_label_of_many_tokens_is_caught(bert_lm, tmp_path):
    from lrp2_interp.cli.inputs import check_fact_lengths

    filler = "\u2c65" * 400  # 400 characters the tokenizer does not know: one [UNK] token
    assert len(bert_lm.token_ids(filler)) == 1
    root = _copy_facts(tmp_path)
    path = root / "en" / "P36.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows[1:4]:  # the three longest labels by characters are short in tokens
        row["sub_label"] = filler
    rows[0]["obj_label"] = "@" * 140  # 140 characters, one token each: past the 128 positions
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="positions") as err:
        check_fact_lengths(bert_lm, load_facts(root, ["en"], ["P36"]))
    assert err.value.field == "obj_label" and "lineid" in str(err.value)


# ------------------------------------------------------------------ 6. the Python API
@pytest.mark.parametrize("control", ["Random", "RANDOM", "yes", ""])
def test_unknown_lrp2_control_is_refused(control):
    with pytest.raises(InputError, match="control must be"):
        LRP2Config(0, 1, control=control)


@pytest.mark.parametrize("layer", [np.int64(1), np.int32(0), np.int64(-1)])
def test_numpy_layer_numbers_are_accepted(bert_lm, layer):
    from lrp2_interp.layers import check_shift_point

    assert check_shift_point(layer, bert_lm.n_layers) == int(layer)
    assert bert_lm.shift_point(layer)
    LRP2Config(layer, np.int64(2)).validate(bert_lm.n_layers)
    if layer >= 0:
        assert bert_lm.resid_post(layer) == f"blocks.{int(layer)}.hook_resid_post"


@pytest.mark.parametrize("positions", [(50,), (-50,), (0, 9)])
def test_positions_past_the_end_are_refused(positions):
    from lrp2_interp.models.hooks import position_mask

    lengths = torch.tensor([4, 9])
    with pytest.raises(InputError, match="past the end of row"):
        position_mask(positions, lengths, 2, 10, torch.device("cpu"))
    assert position_mask((0, -1), lengths, 2, 10, torch.device("cpu")).sum() == 4


@pytest.mark.parametrize("positions", [(4,), (-5,), (0, 7)])
@pytest.mark.parametrize("kind", ["shift", "alignment"])
def test_hooks_refuse_positions_past_the_end(kind, positions):
    from lrp2_interp.methods.alignment import AlignmentHook
    from lrp2_interp.models.hooks import ShiftHook

    d = 8
    hook = (
        ShiftHook(torch.ones(d), positions)
        if kind == "shift"
        else AlignmentHook(torch.eye(d), torch.zeros(d), 0.5, "add", positions)
    ).bind(torch.tensor([4, 3]))
    with pytest.raises(InputError, match="past the end of row"):
        hook(torch.zeros(2, 4, d))


# ------------------------------------------------------------------ 4. one query builder, --source honoured
@pytest.fixture(scope="module")
def zh_causal(repo_model_dir):
    from lrp2_interp.cli.main import REPO_DATA
    from lrp2_interp.models.loading import load_model

    return load_model(repo_model_dir("gpt2")), load_facts(REPO_DATA, ["en", "zh", "fr"], ["P36", "P37"])


def test_logit_lens_targets_come_from_the_query_builder_on_no_space_templates(zh_causal):
    from lrp2_interp.methods.logit_lens import lens_queries
    from lrp2_interp.prompts import gold_query, render_prefix

    lm, facts = zh_causal
    assert "[X]的首都是[Y]" in facts.template("zh", "P36").template.replace(" ", "")
    queries = lens_queries(lm, facts, "zh")
    assert queries
    by_key = {(f.relation, f.lineid): f for f in facts.iter_facts("zh")}
    forced_space = 0
    for q in queries:
        fact = by_key[(q.relation, q.lineid)]
        tpl = facts.template("zh", q.relation).template
        assert q.target_token == gold_query(lm, tpl, fact).gold[0]
        prefix = render_prefix(tpl, fact.sub_label)
        pre, full = lm.token_ids(prefix), lm.token_ids(f"{prefix} {fact.obj_label}")  # the old rule
        forced_space += full[: len(pre)] == pre and len(full) > len(pre) and full[len(pre)] != q.target_token
    assert forced_space > 0  # the old forced space read another token for these facts


def test_logit_lens_names_the_source_language(zh_causal):
    from lrp2_interp.methods.logit_lens import lens_curve, logit_lens

    lm, facts = zh_causal
    table = logit_lens(lm, facts, "zh", source="fr")
    assert set(lens_curve(table, include_same_token=True)["label"]) == {"zh label", "fr label"}


# ------------------------------------------------------------------ 7. one guard for every results folder
def _repo_facts(max_facts: int = 4) -> list[str]:
    from lrp2_interp.cli.main import REPO_DATA

    return ["--facts", str(REPO_DATA), "--relations", "P36", "P30", "--max-facts", str(max_facts)]


@pytest.fixture(scope="module")
def cli_model(repo_model_dir) -> str:
    return str(repo_model_dir("bert"))


#: command -> (its arguments besides --model/--facts/--out, a change of one setting, the name the refusal shows)
GUARDED = {
    "probe": (["--languages", "fr"], ["--max-candidates", "5"], "max_candidates"),
    "sweep": (["--language", "fr", "--layers", "0", "1"], ["--dev-fraction", "0.3"], "dev_fraction"),
    "run": (["--languages", "fr", "--layers", "0", "1", "--n-boot", "20"], ["--dev-fraction", "0.3"], "dev_fraction"),
    "similarity": (["--languages", "fr"], ["--lrp2", "fr=0,1"], "lrp2"),
    "lens": (["--languages", "fr"], ["--include-same-token"], "include_same_token"),
    "lape": (["--languages", "en", "fr"], ["--top-rate", "0.05"], "top_rate"),
    "compare": (
        ["--languages", "fr", "--methods", "mean_steering", "--n-boot", "20", "--n-controls", "1", "--alphas", "1"],
        ["--steer-layers", "1"],
        "steer_layers",
    ),
    "align": (
        ["--languages", "fr", "--n-boot", "20", "--n-controls", "1", "--sigmas", "0", "1"],
        ["--ridge", "0.5"],
        "ridge",
    ),
    "neurons": (
        ["--languages", "fr", "--lrp2", "fr=0,1", "--n-perm", "20", "--no-causal", "--steps", "2"],
        ["--threshold", "0.3"],
        "threshold",
    ),
    "attribute": (
        ["--prompt", "Paris is the capital of [MASK] .", "--target", "France", "--steps", "2"],
        ["--steps", "3"],
        "n_steps",
    ),
}


def _argv(command: str, model: str, out: Path, *extra: str) -> list[str]:
    facts = [] if command == "attribute" else _repo_facts()
    return [command, "--model", model, *facts, *GUARDED[command][0], *extra, "--out", str(out)]


def _run_json(out: Path) -> dict:
    return json.loads((out / "run.json").read_text(encoding="utf-8"))


def test_every_command_writing_a_results_folder_is_guarded():
    """Every command with --out (a folder) also has --overwrite, and each is in GUARDED (or the demo's test)."""
    with_out = {name for name, p in command_parsers().items() if any("--out" in a.option_strings for a in p._actions)}
    with_overwrite = {
        name for name, p in command_parsers().items() if any("--overwrite" in a.option_strings for a in p._actions)
    }
    assert with_out == with_overwrite == set(GUARDED) | {"demo", "vectors"}  # vectors: test_runner.py


@pytest.mark.parametrize("command", sorted(GUARDED))
def test_a_folder_of_another_run_is_refused_in_one_line_and_overwrite_starts_it_clean(
    command, cli_model, tmp_path, capsys
):
    out = tmp_path / "out"
    assert main(_argv(command, cli_model, out)) == 0
    run = _run_json(out)
    assert run["complete"] is True and list(run)[-1] == "complete"  # written last, at the end
    manifest = (out / "manifest.json").read_text(encoding="utf-8")
    assert "batch_size" not in manifest and "memory" not in manifest  # speed-only settings are no results
    (out / "stale.txt").write_text("from the first run")
    capsys.readouterr()

    assert main(_argv(command, cli_model, out, "--dtype", "float64")) == 2
    err = _one_error_line(capsys)
    assert "differs in: dtype: float32 -> float64)" in err and "weights" not in err and "sha256" not in err

    changed = GUARDED[command][1]
    assert main(_argv(command, cli_model, out, *changed)) == 2
    err = _one_error_line(capsys)
    assert "another run" in err and GUARDED[command][2] in err and "--overwrite" in err
    assert _run_json(out) == run  # a refused run writes nothing

    assert main(_argv(command, cli_model, out, *changed, "--overwrite")) == 0
    assert not (out / "stale.txt").exists() and _run_json(out)["complete"] is True
    capsys.readouterr()
    assert main(_argv(command, cli_model, out, *changed)) == 0  # the same run again: accepted


@pytest.mark.parametrize("command", ["probe", "sweep"])
def test_speed_only_settings_do_not_refuse_the_folder(command, cli_model, tmp_path):
    out = tmp_path / "out"
    assert main(_argv(command, cli_model, out, "--batch-size", "4")) == 0
    assert main(_argv(command, cli_model, out, "--batch-size", "7", "--device", "cpu")) == 0


@pytest.mark.parametrize(
    ("command", "module", "name"),
    [
        ("probe", "lrp2_interp.probing.probe", "probe"),
        ("sweep", "lrp2_interp.lrp2.sweep", "run_sweep"),
        ("run", "lrp2_interp.interventions.experiment", "select_and_score"),  # the held-out default
        ("similarity", "lrp2_interp.lrp2.similarity", "similarity_table"),
        ("lens", "lrp2_interp.methods.logit_lens", "logit_lens"),
    ],
)
def test_a_killed_rerun_does_not_leave_a_folder_that_looks_complete(
    command, module, name, cli_model, tmp_path, monkeypatch
):
    import importlib

    out = tmp_path / "out"
    assert main(_argv(command, cli_model, out)) == 0
    assert _run_json(out)["complete"] is True

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module(module), name, killed)
    assert main(_argv(command, cli_model, out)) == 130
    assert _run_json(out)["complete"] is False


def test_the_demo_is_guarded_too(tmp_path, monkeypatch, capsys):
    import lrp2_interp.demo as demo

    def fake_demo(cfg, out, cache_dir=None):
        from types import SimpleNamespace

        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.md").write_text("summary")
        return SimpleNamespace(record={"command": "demo"}, markdown=lambda: "summary")

    monkeypatch.setattr(demo, "run_demo", fake_demo)
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    assert _run_json(out)["complete"] is True
    capsys.readouterr()
    assert main(["demo", "--quick", "--n-boot", "300", "--out", str(out)]) == 2
    assert "n_boot" in _one_error_line(capsys)
    assert main(["demo", "--quick", "--n-boot", "300", "--out", str(out), "--overwrite"]) == 0


def test_overwrite_never_removes_a_folder_of_other_files(cli_model, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    assert main(_argv("lens", cli_model, out, "--overwrite")) == 2
    assert "results folder only" in _one_error_line(capsys) and (out / "thesis.tex").is_file()


def test_vectors_are_recorded_by_content_not_by_name(cli_model, tmp_path, capsys):
    vec = tmp_path / "v"
    assert main(["vectors", "--model", cli_model, *_repo_facts(), "--languages", "en", "fr", "--out", str(vec)]) == 0
    copy = tmp_path / "copy"
    shutil.copy(vec.with_suffix(".safetensors"), copy.with_suffix(".safetensors"))
    shutil.copy(vec.with_suffix(".json"), copy.with_suffix(".json"))
    out = tmp_path / "out"
    argv = ["similarity", "--model", cli_model, *_repo_facts(), "--languages", "fr", "--lrp2", "fr=0,1"]
    assert main([*argv, "--vectors", str(vec), "--out", str(out)]) == 0
    assert main([*argv, "--vectors", str(copy), "--out", str(out)]) == 0  # the same content elsewhere: the same run
    loaded = LanguageVectors.load(vec)
    loaded.vectors["fr"][1, 0] += 1.0  # same name, same size, other numbers
    loaded.save(vec)
    capsys.readouterr()
    assert main([*argv, "--vectors", str(vec), "--out", str(out)]) == 2
    assert "language vectors (their content)" in _one_error_line(capsys)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_written_files_follow_the_umask(tmp_path, umask):
    import os
    import stat

    from lrp2_interp.files import follow_umask, write_table
    from lrp2_interp.models.builders import RandomModelConfig, build_random_model

    old = os.umask(umask)
    try:
        path = _vectors().save(tmp_path / "v")
        table = write_table(tmp_path / "t.parquet", __import__("pandas").DataFrame({"x": [1]}))
        cfg = RandomModelConfig(family="gpt2", n_layers=1, d_model=8, n_heads=2, d_mlp=16, max_positions=16)
        model = build_random_model(cfg, ["a b c", "d e f"], tmp_path / "model", tokenizer_vocab_size=300)
        cache = Path(__import__("tempfile").mkdtemp(dir=tmp_path))  # 0700, as the organism's cache starts
        (cache / "w.bin").write_bytes(b"0")
        (cache / "w.bin").chmod(0o600)
        follow_umask(cache)
    finally:
        os.umask(old)
    for p in (path, path.with_suffix(".json"), table, *model.iterdir(), cache / "w.bin"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask, p
    assert stat.S_IMODE(cache.stat().st_mode) == 0o777 & ~umask


# ------------------------------------------------------------------ 8. the former tracebacks: a full disk, truncated vectors
def _disk_full(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize(("writer", "named"), [("to_parquet", "shards/fr-"), ("to_csv", "sweep_fr.csv")])
def test_a_full_disk_during_a_sweep_is_one_line_naming_the_file(
    writer, named, cli_model, tmp_path, monkeypatch, capsys
):
    import pandas as pd

    monkeypatch.setattr(pd.DataFrame, writer, _disk_full)
    out = tmp_path / "out"
    assert main(_argv("sweep", cli_model, out)) == 2
    err = _error_after_progress(capsys)
    assert err.startswith("lrp2-interp: error: cannot write ") and err.endswith("No space left on device")
    assert named in err and ".tmp" not in err
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]  # no temporary file left behind


def test_a_full_disk_while_saving_vectors_is_one_line(cli_model, tmp_path, monkeypatch, capsys):
    import safetensors.torch
    from safetensors import SafetensorError

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(No space left on device (os error 28))")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    vec = tmp_path / "v"
    assert main(["vectors", "--model", cli_model, *_repo_facts(), "--languages", "en", "--out", str(vec)]) == 2
    err = _error_after_progress(capsys)
    assert f"cannot write {vec}.safetensors" in err and "No space left" in err


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.9])
@pytest.mark.parametrize("command", ["probe", "similarity"])
def test_a_truncated_vectors_file_is_one_line_in_every_command(command, keep, cli_model, tmp_path, capsys):
    path = _vectors().save(tmp_path / "v")
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])
    out = tmp_path / "out"
    argv = [command, "--model", cli_model, *_repo_facts(), "--languages", "fr", "--lrp2", "fr=0,1"]
    assert main([*argv, "--vectors", str(path), "--out", str(out)]) == 2
    err = _one_error_line(capsys)
    assert str(path) in err and ("truncated" in err or "corrupt" in err)
    assert not out.exists()


# ------------------------------------------------------------------ 9. --source honoured everywhere, checked first
def _similarity_of(model: str, languages: list[str], source: str):
    from lrp2_interp.cli.main import REPO_DATA
    from lrp2_interp.lrp2.similarity import SimilarityConfig, similarity_table
    from lrp2_interp.models.loading import load_model

    lm = load_model(model)
    facts = load_facts(REPO_DATA, [source, *languages], ["P36", "P30"], max_facts_per_relation=4).parallel()
    return similarity_table(lm, facts, languages, config=SimilarityConfig(source=source)).table


@pytest.mark.parametrize("source", ["fr", "ru"])
def test_similarity_compares_to_the_given_source(source, cli_model, tmp_path):
    import pandas as pd

    out = tmp_path / "out"
    argv = ["similarity", "--model", cli_model, *_repo_facts(), "--languages", "nl", "--source", source]
    assert main([*argv, "--out", str(out)]) == 0
    got = pd.read_csv(out / "similarity.csv")
    want = _similarity_of(cli_model, ["nl"], source)
    np.testing.assert_allclose(got["centred_cosine"], want["centred_cosine"], rtol=1e-5, equal_nan=True)
    english = _similarity_of(cli_model, ["nl"], "en")
    assert not np.allclose(got["cosine"], english["cosine"])  # not silently 'en'


def test_neurons_compare_every_part_to_the_given_source(cli_model, tmp_path, monkeypatch):
    import lrp2_interp.neurons.pipeline as pipeline
    from lrp2_interp.neurons.pipeline import KnowledgeConfig

    assert KnowledgeConfig(languages=("nl",), lrp2={"nl": (0, 1)}, source="fr").causal.source == "fr"
    seen: dict[str, str] = {}

    def recorded(name):
        original = getattr(pipeline, name)

        def run(*args, **kwargs):
            seen[name] = kwargs["config"].source
            return original(*args, **kwargs)

        return run

    for name in ("similarity_table", "causal_effect"):
        monkeypatch.setattr(pipeline, name, recorded(name))
    out = tmp_path / "out"
    argv = ["neurons", "--model", cli_model, *_repo_facts(1), "--languages", "nl", "--lrp2", "nl=0,1"]
    assert main([*argv, "--source", "fr", "--n-perm", "20", "--steps", "2", "--out", str(out)]) == 0
    assert seen == {"similarity_table": "fr", "causal_effect": "fr"}  # not the default 'en'


def test_neurons_with_another_source_needs_no_english_facts(cli_model, tmp_path):
    """Formerly: with no 'en' in the facts, neurons --source X failed after the whole analysis ran."""
    from lrp2_interp.cli.main import REPO_DATA

    root = tmp_path / "facts"
    for lang in ("fr", "nl"):
        shutil.copytree(REPO_DATA / lang, root / lang)
    out = tmp_path / "out"
    argv = ["neurons", "--model", cli_model, "--facts", str(root), "--relations", "P36", "--max-facts", "4"]
    argv += ["--languages", "nl", "--source", "fr", "--lrp2", "nl=0,1", "--n-perm", "20", "--steps", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    assert _run_json(out)["complete"] is True
    assert set(__import__("pandas").read_csv(out / "overlap_fact.csv")["language"]) == {"nl"}


@pytest.fixture(scope="module")
def en_fr_vectors(cli_model, tmp_path_factory) -> Path:
    vec = tmp_path_factory.mktemp("vec") / "v"
    assert main(["vectors", "--model", cli_model, *_repo_facts(), "--languages", "en", "fr", "--out", str(vec)]) == 0
    return vec


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["probe", "--languages", "nl", "--lrp2", "nl=0,1", "--vectors", "V"], "'nl'"),
        (["probe", "--languages", "fr", "--lrp2", "fr=0,1", "--source", "nl", "--vectors", "V"], "'nl'"),
        (["sweep", "--language", "nl", "--vectors", "V"], "'nl'"),
        (["sweep", "--language", "fr", "--source", "nl", "--vectors", "V"], "'nl'"),
        (["similarity", "--languages", "nl", "--lrp2", "nl=0,1", "--vectors", "V"], "'nl'"),
        (["similarity", "--languages", "fr", "--source", "nl", "--lrp2", "fr=0,1", "--vectors", "V"], "'nl'"),
        (["neurons", "--languages", "nl", "--lrp2", "nl=0,1", "--vectors", "V"], "'nl'"),
        (["neurons", "--languages", "fr", "--source", "nl", "--lrp2", "fr=0,1", "--vectors", "V"], "'nl'"),
        (["lape", "--languages", "fr", "nl", "--lrp2", "fr=0,1"], "--source 'en'"),
    ],
)
def test_a_source_or_language_missing_is_refused_before_any_compute_or_write(
    argv, needle, cli_model, en_fr_vectors, tmp_path, capsys
):
    out = tmp_path / "out"
    argv = [str(en_fr_vectors) if a == "V" else a for a in argv]
    capsys.readouterr()
    assert main([argv[0], "--model", cli_model, *_repo_facts(), *argv[1:], "--out", str(out)]) == 2
    assert needle in _one_error_line(capsys)  # one line and no progress bar: nothing was computed
    assert not out.exists()


# ------------------------------------------------------------------ 10. golds the model cannot tell from a wrong candidate
#: case -> (new en/P36 obj_label per lineid, the reason shown); both facts are left out of ranking
UNRANKABLE = {
    "unknown_only": ({101: "\u2c65", 102: "\u023e"}, "the gold tokenizes to the unknown token only"),
    "same_tokens": ({101: "\u023e-Berlin", 102: "\u2c65-Berlin"}, "the gold tokenizes like the candidate"),
}


def _unrankable_facts(tmp_path: Path, case: str) -> Path:
    root = _copy_facts(tmp_path)
    path = root / "en" / "P36.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        row["obj_label"] = UNRANKABLE[case][0].get(row["lineid"], row["obj_label"])
        row["obj_aliases"] = [] if row["lineid"] in UNRANKABLE[case][0] else row.get("obj_aliases", [])
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return root


@pytest.mark.parametrize("path", ["fast", "reference"])
@pytest.mark.parametrize("case", sorted(UNRANKABLE))
def test_golds_the_model_cannot_tell_apart_are_not_ranked_by_label_order(bert_lm, tmp_path, case, path):
    from lrp2_interp.probing.probe import ProbeConfig, probe, probe_scores

    facts = load_facts(_unrankable_facts(tmp_path, case), ["en", "fr"])
    a, b = UNRANKABLE[case][0].values()
    _, scores = probe_scores(bert_lm, facts, "en", ProbeConfig(path=path))
    assert scores[("P36", 101)][a] == scores[("P36", 101)][b]  # a tie: only the label order would decide

    for lang in ("en", "fr"):  # left out in every language: the languages stay parallel
        res = probe(bert_lm, facts, lang, ProbeConfig(path=path))
        ranked = set(zip(res.table["relation"], res.table["lineid"]))
        assert not ranked & {("P36", 101), ("P36", 102)}
        assert len(res.table) == facts.n_facts(lang) - 2 and res.n_excluded == 2
        assert set(res.excluded["lineid"]) == {101, 102} and set(res.excluded["language"]) == {"en"}
        assert all(r.startswith(UNRANKABLE[case][1]) for r in res.excluded["reason"])


@pytest.mark.parametrize("command", ["probe", "sweep"])
def test_commands_report_the_facts_left_out_of_ranking(command, tiny_model_dir, tmp_path, capsys):
    import pandas as pd

    root = _unrankable_facts(tmp_path, "unknown_only")
    out = tmp_path / "out"
    argv = [command, "--model", str(tiny_model_dir("bert")), "--facts", str(root), "--relations", "P36"]
    argv += ["--languages", "en", "fr"] if command == "probe" else ["--language", "fr", "--layers", "0", "1"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "note: 2 fact(s) left out of ranking" in capsys.readouterr().err
    assert _run_json(out)["n_excluded"] == 2
    assert set(pd.read_csv(out / "excluded.csv")["lineid"]) == {101, 102}
    tables = (
        [pd.read_csv(out / "predictions.csv")]
        if command == "probe"
        else [pd.read_parquet(p) for p in (out / "shards").glob("*.parquet")]
    )
    assert not {101, 102} & set(pd.concat(tables)["lineid"])


@dataclass(frozen=True)
class _Unchanged:
    """An intervention that changes nothing: the comparison's ranking is the baseline's."""

    language: str = "fr"
    source: str = "en"
    name: str = "unchanged"
    title: str = "unchanged"

    def settings(self):
        return [0]

    def fit(self, lm, facts):
        return self

    def hooks(self, setting):
        return []

    def control(self, setting, seed):
        return []

    def extra_controls(self, setting):
        return {}

    def label(self, setting):
        return "none"


@pytest.mark.parametrize("case", sorted(UNRANKABLE))
def test_run_comparison_leaves_out_golds_the_model_cannot_tell_apart(bert_lm, tmp_path, case):
    from lrp2_interp.interventions.selection import SelectionConfig
    from lrp2_interp.methods.compare import CompareConfig, run_comparison
    from lrp2_interp.probing.types import ProbeConfig

    facts = load_facts(_unrankable_facts(tmp_path, case), ["en", "fr"])
    probe = ProbeConfig(distractors="label")  # the fixture facts have no obj_uri
    config = CompareConfig(SelectionConfig(first_rung=2, n_controls=1, probe=probe), n_boot=10)
    res = run_comparison(bert_lm, facts, [_Unchanged()], config)
    assert res.n_excluded == 2 and set(res.excluded["lineid"]) == {101, 102}
    assert all(r.startswith(UNRANKABLE[case][1]) for r in res.excluded["reason"])
    ranked = set(zip(res.facts_table["relation"], res.facts_table["lineid"]))
    assert ranked and not ranked & {("P36", 101), ("P36", 102)}  # in no language, no split


# ------------------------------------------------------------------ 11. align rerun into its own folder
@pytest.fixture(scope="module")
def align_folder(cli_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("align") / "out"
    assert main(_argv("align", cli_model, out)) == 0
    return out


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        (["--ridge", "0.5"], "ridge: 0.0 -> 0.5"),
        (["--sigmas", "0", "0.5"], "sigmas: [0.0, 1.0] -> [0.0, 0.5]"),
        (["--max-facts", "3"], "max_facts: 4 -> 3"),
    ],
)
def test_align_rerun_with_other_settings_is_refused_in_one_line_and_overwrite_starts_clean(
    changed, named, align_folder, cli_model, tmp_path, capsys
):
    """Formerly the rerun read the first run's units and crashed ('argmax of an empty sequence')."""
    import pandas as pd

    out = tmp_path / "out"
    shutil.copytree(align_folder, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(_argv("align", cli_model, out, *changed)) == 2
    err = _one_error_line(capsys)
    assert "another run" in err and named in err and "--overwrite" in err and "argmax" not in err
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing written

    assert main(_argv("align", cli_model, out, *changed, "--overwrite")) == 0
    assert _run_json(out)["complete"] is True
    assert not pd.read_csv(out / "fr" / "search.csv").empty
    assert main(_argv("align", cli_model, out, *changed)) == 0  # the new run's folder: its own rerun resumes


# ------------------------------------------------------------------ 12. neurons: the whole manifest checked before compute
@pytest.fixture(scope="module")
def neurons_folders(cli_model, en_fr_vectors, tmp_path_factory) -> dict[str, Path]:
    """A neurons run with vectors computed from the probe prompts, and one with --vectors (a file)."""
    root = tmp_path_factory.mktemp("neurons")
    assert main(_argv("neurons", cli_model, root / "computed")) == 0
    assert main(_argv("neurons", cli_model, root / "given", "--vectors", str(en_fr_vectors))) == 0
    return {"computed": root / "computed", "given": root / "given"}


def _no_vectors_computed(*args, **kwargs):
    raise AssertionError("language vectors computed before the results folder was checked")


@pytest.mark.parametrize(
    ("first", "extra", "named"),
    [
        ("computed", ["--tokens", "all"], "language vectors"),  # the same prompts, other tokens averaged
        ("computed", ["--vectors", "V"], "language vectors"),
        ("given", [], "language vectors"),  # the file's vectors before, computed ones now
        ("computed", ["--threshold", "0.3"], "threshold"),
    ],
)
def test_neurons_refuses_another_runs_folder_before_computing_vectors(
    first, extra, named, neurons_folders, cli_model, en_fr_vectors, tmp_path, monkeypatch, capsys
):
    import lrp2_interp.lrp2.vectors as vectors

    out = tmp_path / "out"
    shutil.copytree(neurons_folders[first], out)
    monkeypatch.setattr(vectors, "compute_language_vectors", _no_vectors_computed)
    capsys.readouterr()
    extra = [str(en_fr_vectors) if a == "V" else a for a in extra]
    assert main(_argv("neurons", cli_model, out, *extra)) == 2
    err = _one_error_line(capsys)
    assert "another run" in err and named in err and "--overwrite" in err


def test_neurons_rerun_with_computed_vectors_resumes(neurons_folders, cli_model, tmp_path):
    """The vectors' record is known before they are computed and equals the computed vectors' record."""
    out = tmp_path / "out"
    shutil.copytree(neurons_folders["computed"], out)
    assert main(_argv("neurons", cli_model, out)) == 0
    assert _run_json(out)["complete"] is True


def test_planned_provenance_is_the_computed_vectors_provenance(bert_lm):
    from lrp2_interp.lrp2.vectors import compute_language_vectors, planned_provenance

    sentences = {"en": ["Paris is a city .", "Berlin is a city ."], "fr": ["Paris est une ville ."]}
    for tokens in ("real", "all"):
        vec = compute_language_vectors(bert_lm, sentences, corpus={"en": "c", "fr": "c"}, tokens=tokens, progress=False)
        assert vec.provenance() == planned_provenance(bert_lm, sentences, corpus={"en": "c", "fr": "c"}, tokens=tokens)
    other = {**sentences, "fr": ["Berlin est une ville ."]}  # other sentences, the same name and count
    assert planned_provenance(bert_lm, other) != planned_provenance(bert_lm, sentences)


# ------------------------------------------------------------------ 13. figures name the source language
def _texts(fig) -> list[str]:
    """Every text of a figure: titles, the suptitle, axis and colour-bar labels, legends."""
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def _titled(texts: list[str], source_name: str) -> bool:
    return any(source_name in t for t in texts) and not any("English" in t for t in texts)


def test_every_figure_of_neurons_and_similarity_names_the_source(cli_model, tmp_path, monkeypatch):
    import lrp2_interp.plots as plots

    seen: dict[str, list[str]] = {}
    original = plots.save_plot

    def recorded(ax, path, table):
        seen[Path(path).stem] = _texts(ax.figure)
        return original(ax, path, table)

    monkeypatch.setattr(plots, "save_plot", recorded)
    argv = ["--model", cli_model, *_repo_facts(), "--languages", "nl", "--source", "fr"]
    neurons = ["--lrp2", "nl=0,1", "--n-perm", "20", "--steps", "2", "--no-causal"]
    assert main(["neurons", *argv, *neurons, "--out", str(tmp_path / "n")]) == 0
    assert main(["similarity", *argv, "--out", str(tmp_path / "s")]) == 0
    named = ["similarity", "heatmap_shared_neurons_baseline", "heatmap_shared_neurons_lrp2"]
    named += ["heatmap_overlap_gain", "heatmap_relation_overlap"]
    assert set(named) <= set(seen)
    for stem in named:
        assert _titled(seen[stem], "French"), (stem, seen[stem])
    assert not [t for texts in seen.values() for t in texts if "English" in t]


def _drawn(name: str, source: str):
    """Draw figure ``name`` from a small hand-made table with ``source``; returns its texts."""
    import pandas as pd

    import lrp2_interp.figures as figures
    import lrp2_interp.heldout_figures as heldout
    from lrp2_interp.drawing import offscreen
    from lrp2_interp.metrics import Estimate

    by_layer = pd.DataFrame(
        {
            "language": ["nl"] * 4,
            "condition": ["baseline", "baseline", "lrp2", "lrp2"],
            "unit": ["P36:1"] * 4,
            "layer": [0, 1, 0, 1],
            "n_shared": [1.0, 2.0, 2.0, 3.0],
        }
    )
    with offscreen():
        if name == "similarity":
            table = pd.DataFrame(
                {"language": "nl", "layer": [0, 1], "condition": "baseline", "centred_cosine": [0.1, 0.2]}
            )
            ax = figures.draw_similarity(table, source=source)
        elif name == "shared_neurons":
            ax = figures.draw_shared_neurons(by_layer, source=source)
        elif name == "overlap_pooled":
            ax = figures.draw_overlap(by_layer.drop(columns="layer"), source=source)
        elif name == "overlap_gain":
            gain = by_layer.assign(value="n_shared", baseline=1.0, lrp2=2.0, gain=1.0)
            ax = figures.draw_overlap_gain(gain, source=source)
        elif name == "relation_overlap":
            summary = by_layer.assign(same_overlap_rate=0.5, different_overlap_rate=0.2)
            ax = figures.draw_relation_overlap(summary, source=source)
        elif name == "control":
            summary = pd.DataFrame(
                {"language": ["nl"], "condition": ["baseline"], "jaccard": [0.2], "chance_jaccard": [0.1]}
            )
            ax = figures.draw_control(summary.assign(share_above_chance=0.5), source=source)
        else:
            est = Estimate(40.0, 30.0, 50.0)
            summary = pd.DataFrame({"language": ["nl"], "n_test": [10], "trans_baseline": [est], "trans_chosen": [est]})
            ax = heldout.draw_real_size_trans(summary, source=source)
        return _texts(ax.figure)


@pytest.mark.parametrize(
    "name",
    ["similarity", "shared_neurons", "overlap_pooled", "overlap_gain", "relation_overlap", "control", "trans"],
)
def test_every_draw_function_names_the_given_source(name):
    assert _titled(_drawn(name, "ru"), "Russian")
    assert any("English" in t for t in _drawn(name, "en"))  # the default source, English, is still named


def test_the_heldout_experiment_leaves_out_golds_the_model_cannot_tell_apart(cli_model, tmp_path):
    """The Python API behind ``run`` applies the rule itself (the command filtered the facts before calling it)."""
    from lrp2_interp.cli.main import REPO_DATA
    from lrp2_interp.interventions.experiment import run_experiment
    from lrp2_interp.lrp2.full_grid import ExperimentConfig
    from lrp2_interp.models.loading import load_model
    from lrp2_interp.probing.types import ProbeConfig

    root = tmp_path / "facts"
    for lang in ("en", "fr", "es"):
        shutil.copytree(REPO_DATA / lang, root / lang)
    path = root / "fr" / "P36.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    unknown = {rows[0]["lineid"]: "\u2c65", rows[1]["lineid"]: "\u023e"}
    for row in rows:
        if row["lineid"] in unknown:
            row.update(obj_label=unknown[row["lineid"]], obj_aliases=[])
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    facts = load_facts(root, ["en", "fr", "es"], ["P36", "P30"])
    config = ExperimentConfig(languages=("fr",), layers=(0, 1), n_controls=1, n_boot=20, probe=ProbeConfig())
    res = run_experiment(load_model(cli_model), facts, config, tmp_path / "out", progress=False)
    assert set(res.excluded["lineid"]) == set(unknown)
    table = res.selections["fr"].facts_table
    assert len(table) and not set(unknown) & set(table["lineid"])  # not ranked in fr, nor in the source
