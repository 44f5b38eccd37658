"""Atomic file writes and results-folder metadata.

Nothing half-written is ever left on disk: every writer here writes to a
temporary file in the destination folder and renames it into place.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from lrp2_interp.errors import InputError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    Use for writers that want a file name (``df.to_parquet``, ``fig.savefig``).
    On an exception the temporary file is removed and ``path`` is untouched.  An ``OSError``
    (a full disk, a read-only folder) is raised again as one naming ``path``, not the temporary file.
    The file gets the mode the umask gives a new file (``0644`` under umask 022), whatever the writer did
    (``mkstemp`` creates ``0600``; some writers, e.g. safetensors, replace the file they are given).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    except OSError as err:
        raise write_error(err, path) from err
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())  # after the writer: the mode of a file it created
        os.replace(tmp_path, path)
    except BaseException as err:
        tmp_path.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise write_error(err, path) from err
        raise


def write_error(err: OSError, path: str | Path) -> OSError:
    """``err`` as an ``OSError`` naming ``path`` (the file being written) with the system's reason."""
    reason = err.strerror or str(err) or type(err).__name__
    return OSError(err.errno, f"cannot write {path}: {reason}", str(path))


def follow_umask(folder: str | Path, *, since: float | None = None) -> None:
    """Give ``folder`` and the files in it the modes the umask gives new ones (``mkdtemp`` makes ``0700``,
    ``save_pretrained`` writes weights ``0600``); ``since`` (a time): only the files modified since then."""
    folder = Path(folder)
    umask = current_umask()
    if since is None:
        folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        if path.is_file() and not path.is_symlink() and (since is None or path.stat().st_mtime >= since):
            path.chmod(0o666 & ~umask)


def current_umask() -> int:
    """The process umask (read without changing it for longer than two system calls)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


#: longest line a fact, template or sentence file may have (a 2M-character line is refused, not tokenized)
MAX_LINE_CHARS = 100_000


def iter_text_lines(path: str | Path, *, max_chars: int = MAX_LINE_CHARS) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of a UTF-8 text file, without the line ending.

    Raises :class:`~lrp2_interp.errors.InputError` naming the file and line for bytes
    that are not UTF-8 and for a line longer than ``max_chars`` (checked while
    reading, so an enormous line is never held in memory).  A UTF-8 BOM is dropped.
    """
    path = Path(path)
    try:
        fh = path.open("rb")
    except OSError as err:
        raise InputError(f"cannot read file ({err.strerror})", file=path) from None
    limit = 4 * max_chars + 2  # bytes: at most 4 per character, plus the line ending
    with fh:
        lineno = 0
        while raw := fh.readline(limit):
            lineno += 1
            if len(raw) >= limit and not raw.endswith(b"\n"):
                raise InputError(f"line is longer than {max_chars:,} characters", file=path, line=lineno)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise InputError(
                    f"not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1})", file=path, line=lineno
                ) from None
            text = text.rstrip("\r\n")
            if lineno == 1:
                text = text.removeprefix("\ufeff")
            if len(text) > max_chars:
                raise InputError(f"line has {len(text):,} characters (limit {max_chars:,})", file=path, line=lineno)
            yield lineno, text


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types (dataclasses, paths, numpy/torch scalars; anything else as ``str``)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {k: jsonable(v) for k, v in asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        try:
            return obj.item()
        except (ValueError, RuntimeError):
            pass
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(jsonable(obj), indent=2, ensure_ascii=False) + "\n")


def write_table(path: str | Path, df: Any) -> Path:
    """Write a pandas DataFrame as CSV or parquet (by suffix), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:  # m, n, n_test, ... as integers even when a row has none (the baseline has no m, n)
            int_columns(df).to_csv(tmp, index=False)
    return path


#: columns that hold integers (layer indices, counts): written as integers, never as ``2.0``
INT_COLUMNS = (
    "m",
    "n",
    "n_test",
    "n_facts",
    "oracle_m",
    "oracle_n",
    "heldout_m",
    "heldout_n",
    "chosen_m",
    "chosen_n",
    "n_dev",
    "n_relations",
    "min_candidates",
    "layer",
    "lineid",
    "rank",
    "n_candidates",
    "n_units",
    "n_undefined",
    "n_seen",
    "kn_facts",
)


def int_columns(df: Any, names: Sequence[str] = INT_COLUMNS) -> Any:
    """``df`` with each of ``names`` that holds only whole numbers (and missing values) as pandas ``Int64``."""
    import pandas as pd

    out = df.copy()
    for name in dict.fromkeys(names):
        if name not in out.columns or (
            out[name].dtype == object
            and not out[name]
            .map(lambda v: v is None or v is pd.NA or (isinstance(v, (int, float)) and not isinstance(v, bool)))
            .all()
        ):
            continue
        col = pd.to_numeric(out[name], errors="coerce")
        if col.isna().sum() == out[name].isna().sum() and (col.dropna() % 1 == 0).all():
            out[name] = col.astype("Int64")
    return out


def save_figure(path: str | Path, fig: Any, dpi: int = 130) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    return path


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The current git commit of the package checkout, or None outside git."""
    here = Path(cwd) if cwd is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_metadata(config: Any = None, **extra: Any) -> dict[str, Any]:
    """Provenance recorded in every results folder (``run.json``)."""
    import torch

    from lrp2_interp import __version__

    meta = {
        "package": "lrp2_interp",
        "version": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "host": platform.node(),
        "started_unix": time.time(),
        "config": jsonable(config) if config is not None else None,
    }
    meta.update({k: jsonable(v) for k, v in extra.items()})
    return meta
