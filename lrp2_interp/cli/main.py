"""Command line ``lrp2-interp``: builds the parser from the command modules and runs one command.

Every command writes its outputs (CSV/parquet + JSON config + PNG) into a results
folder and prints where they are; a folder holding another run's results is refused
(``--overwrite`` starts it clean; see :class:`lrp2_interp.cli.runner.Runner`).
Bad input exits with status 2 and one line naming the file, line and field; so does a
failed write (a full disk), naming the file.  Ctrl-C: one line, status 130.  Commands that shard work (``sweep``, ``run``)
can be launched with ``torchrun --nproc_per_node K -m lrp2_interp.cli.main ...``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lrp2_interp.cli import lrp2, methods, neurons, organism
from lrp2_interp.cli.checks import check_args
from lrp2_interp.cli.inputs import default_facts
from lrp2_interp.errors import InputError

__all__ = ["build_parser", "command_parsers", "default_facts", "main"]  # and REPO_DATA, see __getattr__

DESCRIPTION = "LRP2 language representation projection, typed mLAMA probing and knowledge neurons"
#: the command modules, in the order of ``lrp2-interp --help``
COMMAND_MODULES = (lrp2, organism, neurons, methods)


def __getattr__(name: str) -> Path:
    """``REPO_DATA``: the shipped facts folder (resolved when asked for, not at import)."""
    if name == "REPO_DATA":
        from lrp2_interp.facts import shipped_facts_root

        return shipped_facts_root(check=False)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="lrp2-interp", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser, dict(sub.choices)


def build_parser() -> argparse.ArgumentParser:
    """The ``lrp2-interp`` parser with every command of :data:`COMMAND_MODULES`."""
    return _parsers()[0]


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """{command: its own parser} (what ``lrp2-interp COMMAND --help`` shows)."""
    return _parsers()[1]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run_command(argv)
    except KeyboardInterrupt:  # Ctrl-C: one line, the shell's status for SIGINT (128 + 2), no traceback
        from tqdm import tqdm

        for bar in list(getattr(tqdm, "_instances", ())):
            bar.close()
        print("lrp2-interp: interrupted (files are written atomically: rerun the same command)", file=sys.stderr)
        return 130


def run_command(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, check it and run its command; bad input is one line on stderr and status 2."""
    args = build_parser().parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own tqdm bars report progress
    try:
        check_args(args)  # every argument checked before any model is loaded or file written
        args.func(args)
    except InputError as err:
        error_line(str(err))
        return 2
    except OSError as err:  # a full disk, a read-only or vanished folder: the system's reason and the file
        error_line(os_error_line(err))
        return 2
    return 0


def error_line(message: str) -> None:
    """``lrp2-interp: error: MESSAGE`` on a line of its own (progress bars the error interrupted are closed)."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
    print(f"lrp2-interp: error: {message}", file=sys.stderr)


def os_error_line(err: OSError) -> str:
    """One line for an ``OSError``: its reason and the file it names (files.write_error names the target)."""
    reason = (err.strerror or str(err) or type(err).__name__).splitlines()[0]
    name = err.filename
    return reason if name is None or str(name) in reason else f"{name}: {reason}"


if __name__ == "__main__":
    sys.exit(main())
