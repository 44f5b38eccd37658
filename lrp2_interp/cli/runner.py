"""One command's run: its timer, torchrun, execution settings, results-folder guard, run.json and last line.

Every command runs inside a :class:`Runner` (``with Runner(args) as run:``, or the decorator :func:`runs`)::

    @runs(distributed=True)                   # torchrun's process group joined, closed at the end
    def cmd_x(args, run):
        ...                                   # check the input, load facts and model
        config = run.execution.configure(x_options().build(args))   # speed-only fields: the execution settings
        out = run.folder(config, facts=facts, lm=lm)   # --overwrite, then the manifest guard
        ...                                   # compute and write into out
        run.finish(run_metadata(config, **run.info()), report=text)

The manifest (:func:`lrp2_interp.manifest.results_manifest`) holds what changes a number: the configs,
every parsed option but the speed-only ones of :class:`~lrp2_interp.execution.ExecutionConfig` and
those recorded by content (model weights and dtype, facts, vectors).  ``run.json`` gets
``"complete": true`` only in :meth:`Runner.finish`, as its last field.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrp2_interp.cli.inputs import facts_folder, finish_run
from lrp2_interp.distributed import Dist
from lrp2_interp.execution import SPEED_OPTIONS, ExecutionConfig

if TYPE_CHECKING:
    from lrp2_interp.facts import FactSet
    from lrp2_interp.lrp2.vectors import LanguageVectors
    from lrp2_interp.models.loading import LanguageModel

#: parsed options that change no number: the speed-only ones (:data:`~lrp2_interp.execution.SPEED_OPTIONS`),
#: where files go, and those the manifest records by content instead (--model: weights digest; --facts:
#: facts digest; --vectors: vectors digest; --dtype: the model's dtype): left out of the manifest's ``options``
NOT_SETTINGS = SPEED_OPTIONS | frozenset(
    {"command", "func", "out", "overwrite", "cache", "model", "facts", "vectors", "dtype"}
)


def cli_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Every parsed option that may change a number (all but :data:`NOT_SETTINGS`), by name."""
    return {k: v for k, v in sorted(vars(args).items()) if k not in NOT_SETTINGS and not callable(v)}


class Runner:
    """Runs one command (see the module docstring): ``with Runner(args) as run: ...``."""

    def __init__(self, args: argparse.Namespace, *, distributed: bool = False) -> None:
        self.args = args
        self.execution = ExecutionConfig.from_options(args)  # its configure() feeds the speed-only config fields
        self.distributed = distributed  # join torchrun's process group (commands that shard their work)
        self.dist = Dist()
        self.t0 = time.time()
        out = getattr(args, "out", None)
        self.out: Path | None = None if out is None else Path(out)

    def __enter__(self) -> Runner:
        self.t0 = time.time()
        self.execution.apply()
        if self.distributed:
            from lrp2_interp.distributed import init_distributed

            self.dist = init_distributed(self.execution.device)
        return self

    def __exit__(self, *exc: object) -> None:
        self.dist.close()

    # ------------------------------------------------------------------ the results folder
    @property
    def folder_path(self) -> Path:
        """``--out``."""
        if self.out is None:
            raise ValueError(f"command {self.args.command!r} has no --out")
        return self.out

    def clean(self) -> None:
        """``--overwrite``: empty ``--out`` (rank 0; the others wait).  Call it after every input check and
        before the manifest check, so bad input never removes old results."""
        from lrp2_interp.manifest import clear_results

        if not getattr(self.args, "overwrite", False):
            return
        if self.dist.is_main:
            clear_results(self.folder_path)
        self.dist.barrier()

    def manifest(
        self,
        config: Any = None,
        *,
        facts: FactSet | None = None,
        lm: LanguageModel | None = None,
        vectors: LanguageVectors | None = None,
        options: bool = True,
        **extra: Any,
    ) -> dict[str, Any]:
        """What the results depend on: ``config``, the facts, the model, loaded ``vectors`` and (``options``)
        the command and every parsed option that may change a number (:func:`cli_settings`)."""
        from lrp2_interp.manifest import results_manifest

        if options:
            extra = {"command": self.args.command, "options": cli_settings(self.args), **extra}
        return results_manifest(config, facts=facts, lm=lm, vectors=vectors, **extra)

    def folder(
        self,
        config: Any = None,
        *,
        facts: FactSet | None = None,
        lm: LanguageModel | None = None,
        vectors: LanguageVectors | None = None,
        options: bool = True,
        ignore: Sequence[str] = (),
        write: bool = True,
    ) -> Path:
        """``--out``, guarded before anything is computed or written there.

        ``--overwrite`` starts it clean; a folder holding another run's results is refused with one line
        naming what differs (:meth:`manifest`); the same run's folder is resumed.  ``write=False`` with
        ``ignore`` is an early check that writes nothing (an analysis that checks the whole manifest itself
        follows it; ``options=False``: its manifest has no command line).
        """
        from lrp2_interp.manifest import check_manifest

        manifest = self.manifest(config, facts=facts, lm=lm, vectors=vectors, options=options)
        self.clean()
        check_manifest(self.folder_path, manifest, ignore=ignore, write=write)
        return self.folder_path

    def files(
        self, target: Path, outputs: Sequence[Path], config: Any = None, *, facts: FactSet | None = None, lm: Any = None
    ) -> None:
        """:meth:`folder` for a result that is the files ``outputs`` (``target.*``), with its manifest beside them."""
        from lrp2_interp.manifest import check_file_manifest

        manifest = self.manifest(config, facts=facts, lm=lm)
        check_file_manifest(target, outputs, manifest, overwrite=getattr(self.args, "overwrite", False))

    # ------------------------------------------------------------------ the run's record
    def seconds(self) -> float:
        return round(time.time() - self.t0, 1)

    def info(self, **extra: Any) -> dict[str, Any]:
        """What every ``run.json`` of the CLI records besides :func:`~lrp2_interp.files.run_metadata`'s provenance."""
        args = self.args
        langs = getattr(args, "languages", None)
        return {
            "command": args.command,
            "facts": facts_folder(args) if hasattr(args, "facts") else None,
            "languages": list(langs) if langs else None,
            "relations": getattr(args, "relations", None),
            "max_facts": getattr(args, "max_facts", None),
            "seed": getattr(args, "seed", None),
            "device": getattr(args, "device", None),
            "dtype": getattr(args, "dtype", None),
            "device_map": getattr(args, "device_map", None),
            "seconds": self.seconds(),
            **extra,
        }

    def finish(self, meta: Mapping[str, Any], report: str | None = None) -> None:
        """``run.json`` (``meta``, ``"complete": true`` last), then ``report`` and the final line."""
        finish_run(self.folder_path, meta)
        if report is not None:
            print(report)
        self.done()

    def done(self, path: Path | None = None) -> None:
        """The final line: where the results are (``path``, default ``--out``) and how long the run took."""
        where = self.folder_path if path is None else path
        print(f"results written to {where.resolve()} ({time.time() - self.t0:.1f} s)")


Command = Callable[[argparse.Namespace], None]


def runs(*, distributed: bool = False) -> Callable[[Callable[[argparse.Namespace, Runner], None]], Command]:
    """Decorate ``f(args, run)`` into a command ``f(args)`` run inside ``Runner(args, distributed=distributed)``."""

    def wrap(f: Callable[[argparse.Namespace, Runner], None]) -> Command:
        @functools.wraps(f)
        def command(args: argparse.Namespace) -> None:
            with Runner(args, distributed=distributed) as run:
                f(args, run)

        return command

    return wrap
