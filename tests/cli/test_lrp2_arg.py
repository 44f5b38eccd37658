"""One ``--lrp2 LANG=M,N`` grammar for every command; probe/lape/lens still take the deprecated ``M N``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from lrp2_interp.cli.checks import Lrp2Arg, check_args, parse_lrp2
from lrp2_interp.cli.main import REPO_DATA, build_parser, main
from lrp2_interp.errors import InputError

FACTS = ["--facts", str(REPO_DATA), "--relations", "P36", "--max-facts", "4"]


@pytest.fixture(scope="module")
def bloom(repo_model_dir) -> str:
    return str(repo_model_dir("bloom"))


@pytest.fixture(scope="module")
def vectors(bloom, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("vec") / "v"
    assert main(["vectors", "--model", bloom, "--languages", "en", "fr", *FACTS, "--out", str(out)]) == 0
    return str(out.with_suffix(".safetensors"))


def _err_lines(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and "it/s]" not in ln]


# ------------------------------------------------------------------ the grammar
def test_parse_new_form_keeps_the_order():
    assert parse_lrp2(["zh=1,3", "fr=2,4"]) == Lrp2Arg({"zh": (1, 3), "fr": (2, 4)})
    assert list(parse_lrp2(["zh=1,3", "fr=2,4"]).for_languages(["fr", "zh"])) == ["zh", "fr"]
    assert parse_lrp2(None).for_languages(["fr"]) == {}


def test_old_form_only_where_it_was_accepted():
    legacy = parse_lrp2(["2", "4"], legacy=True)
    assert legacy == Lrp2Arg({}, (2, 4))
    assert legacy.for_languages(["en", "fr"]) == {"en": (2, 4), "fr": (2, 4)}
    assert legacy.deprecation(["fr", "zh"]) == (
        "lrp2-interp: warning: --lrp2 2 4 is deprecated; use --lrp2 fr=2,4 zh=2,4"
    )
    assert "LANG=2,4" in (legacy.deprecation([]) or "")
    assert parse_lrp2(["fr=2,4"], legacy=True).deprecation(["fr"]) is None
    with pytest.raises(InputError, match="expected LANG=M,N"):
        parse_lrp2(["2", "4"])  # neurons, similarity: never had it


@pytest.mark.parametrize(
    "items, needle",
    [
        (["fr"], "expected LANG=M,N"),
        (["fr=2"], "expected LANG=M,N"),
        (["fr=2,4,6"], "expected LANG=M,N"),
        (["fr=a,b"], "expected LANG=M,N"),
        (["fr=2,4=5"], "expected LANG=M,N"),
        (["=2,4"], "no language"),  # was accepted as the language ''
        ([" =2,4"], "no language"),
        (["fr=4,2"], "-1 <= M <= N"),
        (["fr=-2,2"], "-1 <= M <= N"),  # -1 (the embedding output) is a shift point, -2 is nothing
        (["fr=0,2", "fr=1,2"], "given twice"),
        (["4", "2"], "-1 <= M <= N"),  # the old form, decreasing
        (["-2", "2"], "-1 <= M <= N"),
        (["2"], "expected LANG=M,N"),
        (["2", "4", "6"], "expected LANG=M,N"),
    ],
)
def test_malformed_values_are_one_input_error(items, needle):
    with pytest.raises(InputError, match=needle) as err:
        parse_lrp2(items, legacy=True)
    assert err.value.field == "--lrp2" and "\n" not in str(err.value)


def test_a_pair_for_a_language_not_in_the_run_is_refused():
    with pytest.raises(InputError, match="zz, not among --languages en fr"):
        parse_lrp2(["fr=0,2", "zz=0,2"]).for_languages(["en", "fr"])


# ------------------------------------------------------------------ the commands
def _check(argv: list[str], tmp_path: Path) -> None:
    check_args(build_parser().parse_args([*argv, "--out", str(tmp_path / "o")]))


@pytest.mark.parametrize(
    "argv, new",
    [
        (["probe", "--model", "m", "--languages", "en", "fr", "--lrp2", "0", "2"], "--lrp2 fr=0,2"),
        (["lape", "--model", "m", "--languages", "en", "fr", "zh", "--lrp2", "1", "3"], "--lrp2 fr=1,3 zh=1,3"),
        (["lens", "--model", "m", "--languages", "fr", "zh", "--lrp2", "0", "2"], "--lrp2 fr=0,2 zh=0,2"),
    ],
)
def test_old_form_warns_once_naming_the_new_form(tmp_path, capsys, argv, new):
    _check(argv, tmp_path)
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "is deprecated" in lines[0] and lines[0].endswith(f"use {new}")


@pytest.mark.parametrize("command", ["neurons", "similarity"])
def test_old_form_is_refused_where_it_never_existed(tmp_path, capsys, command):
    argv = [command, "--model", "m", "--languages", "fr", "--lrp2", "0", "2", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "expected LANG=M,N" in lines[0]


def test_lape_pair_for_the_source_is_refused(tmp_path):
    with pytest.raises(InputError, match="en, not among --languages fr"):
        _check(["lape", "--model", "m", "--languages", "en", "fr", "--lrp2", "en=0,2"], tmp_path)


def _probe(bloom: str, out: Path, *extra: str) -> pd.DataFrame:
    assert main(["probe", "--model", bloom, "--languages", "en", "fr", *FACTS, *extra, "--out", str(out)]) == 0
    return pd.read_csv(out / "predictions.csv")


def test_probe_new_form_shifts_only_the_named_language(bloom, vectors, tmp_path, capsys, monkeypatch):
    import lrp2_interp.lrp2.projection as projection

    shifted: list[str] = []
    real = projection.lrp2_hooks

    def spy(lm, vec, lang, cfg):
        shifted.append(lang)
        return real(lm, vec, lang, cfg)

    monkeypatch.setattr(projection, "lrp2_hooks", spy)
    new = _probe(bloom, tmp_path / "new", "--lrp2", "fr=0,2", "--vectors", vectors)
    assert shifted == ["fr"] and not _err_lines(capsys)
    assert json.loads((tmp_path / "new" / "run.json").read_text())["lrp2"] == {"fr": [0, 2]}
    shifted.clear()
    old = _probe(bloom, tmp_path / "old", "--lrp2", "0", "2", "--vectors", vectors)
    assert shifted == ["en", "fr"]  # as before: every probed language (the source's shift is zero)
    lines = _err_lines(capsys)
    assert lines == ["lrp2-interp: warning: --lrp2 0 2 is deprecated; use --lrp2 fr=0,2"]
    assert json.loads((tmp_path / "old" / "run.json").read_text())["lrp2"] == {"en": [0, 2], "fr": [0, 2]}
    pd.testing.assert_frame_equal(new, old)  # the same numbers either way


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--languages", "fr", "--lrp2", "zh=0,2"], "zh, not among --languages fr"),
        (["--lrp2", "xx=0,2"], "xx, not among --languages"),  # every language of the facts, none is xx
        (["--languages", "fr", "--lrp2", "fr=0,2,"], "expected LANG=M,N"),
    ],
)
def test_probe_pair_for_a_language_not_probed_is_refused(vectors, tmp_path, capsys, extra, needle):
    out = tmp_path / "o"
    argv = ["probe", "--model", str(tmp_path / "no-model"), *FACTS, *extra, "--vectors", vectors]
    assert main([*argv, "--out", str(out)]) == 2  # refused before the (missing) model is looked at
    lines = _err_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("lrp2-interp: error:") and needle in lines[0], lines
    assert not out.exists()


def test_probe_lrp2_without_vectors_fails_before_the_model_loads(tmp_path, capsys):
    argv = ["probe", "--model", str(tmp_path / "no-model"), "--languages", "fr", *FACTS, "--lrp2", "fr=0,2"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "--lrp2 needs --vectors" in lines[0]
