"""Atomic writes follow the umask; text lines are checked for encoding and length; integer columns."""

from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd
import pytest

from lrp2_interp.errors import InputError
from lrp2_interp.files import int_columns, iter_text_lines, write_json, write_table, write_text


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    """mkstemp creates 0600 files; results were unreadable by the group whatever the umask."""
    old = os.umask(umask)
    try:
        paths = [
            write_text(tmp_path / "a.txt", "x"),
            write_json(tmp_path / "b.json", {"a": 1}),
            write_table(tmp_path / "c.csv", pd.DataFrame({"a": [1]})),
            write_table(tmp_path / "d.parquet", pd.DataFrame({"a": [1]})),
        ]
    finally:
        os.umask(old)
    assert [stat.S_IMODE(p.stat().st_mode) for p in paths] == [mode] * 4


def test_text_lines_refuse_bad_bytes_and_huge_lines(tmp_path):
    p = tmp_path / "s.txt"
    p.write_bytes("\ufeffone\r\ntwo\n".encode())
    assert list(iter_text_lines(p)) == [(1, "one"), (2, "two")]
    p.write_bytes(b"ok\nbad \xe9 byte\n")
    with pytest.raises(InputError, match="not UTF-8") as err:
        list(iter_text_lines(p))
    assert (err.value.file, err.value.line) == (str(p), 2)
    p.write_bytes(b"ok\n" + b"a" * 1000 + b"\n")
    with pytest.raises(InputError, match="longer than 100 characters") as err:
        list(iter_text_lines(p, max_chars=100))
    assert err.value.line == 2


def test_integer_columns_stay_integers_in_csv(tmp_path):
    df = pd.DataFrame(
        {
            "condition": ["baseline", "m0_n2"],
            "m": [np.nan, 0.0],
            "n": [np.nan, 2.0],
            "acc": [50.0, 62.5],
            "n_test": [4.0, 4.0],
        }
    )
    out = int_columns(df)
    assert str(out["m"].dtype) == "Int64" and out["acc"].dtype == float
    write_table(tmp_path / "t.csv", df)
    assert (tmp_path / "t.csv").read_text().splitlines()[1:] == ["baseline,,,50.0,4", "m0_n2,0,2,62.5,4"]
    assert int_columns(pd.DataFrame({"m": [0.5]}))["m"].dtype == float  # not whole numbers: unchanged
