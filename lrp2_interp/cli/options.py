"""Argparse options generated from fields of a frozen config dataclass, and the config built back from them.

An :class:`Option` names one field of a config (and, where today's flag differs from the
field name, the flag).  :class:`ConfigOptions` adds those options to a parser with the
field's type (from its annotation) and the dataclass's own default, so the command line
never repeats a default by hand, and :meth:`ConfigOptions.build` makes the config from
the parsed arguments.  Supported annotations: ``int``, ``float``, ``str``, ``bool``
(a ``store_true`` flag, default ``False``), ``Literal[...]`` (choices), ``tuple[T, ...]``
(several values) and any of these ``| None``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, Union

_SCALARS = (int, float, str)
C = TypeVar("C")


@dataclass(frozen=True)
class Option:
    """One field of a config as a command-line option."""

    field: str  # the dataclass field
    flag: str | None = None  # default: --field-name
    help: str | None = None
    choices: tuple[Any, ...] | None = None  # default: the values of a Literal annotation
    metavar: str | None = None

    @property
    def flag_name(self) -> str:
        return self.flag or "--" + self.field.replace("_", "-")

    @property
    def dest(self) -> str:
        """The attribute of the parsed arguments (argparse's rule: the flag without dashes)."""
        return self.flag_name.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class OptionSpec:
    """What argparse needs for one option, read from a field's annotation and default."""

    type: type
    nargs: str | None
    choices: tuple[Any, ...] | None
    flag_only: bool  # a bool field: store_true
    required: bool
    default: Any


def finite_float(text: str) -> float:
    """argparse ``type`` of every float option: a float, never NaN or infinity (refused by the parser, exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _strip_none(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (tp, False)."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def field_default(config: type, name: str) -> Any:
    """The default of field ``name`` of dataclass ``config`` (``dataclasses.MISSING`` when it has none)."""
    for f in dataclasses.fields(config):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            return dataclasses.MISSING
    raise KeyError(f"{config.__name__} has no field {name!r}")


def option_spec(config: type, option: Option) -> OptionSpec:
    """Type, arity, choices and default of ``option`` from the annotation and default of its field."""
    hints = typing.get_type_hints(config)
    if option.field not in hints:
        raise KeyError(f"{config.__name__} has no field {option.field!r}")
    tp, _ = _strip_none(hints[option.field])
    default = field_default(config, option.field)
    nargs = None
    if typing.get_origin(tp) is tuple:
        item = typing.get_args(tp)
        if len(item) != 2 or item[1] is not Ellipsis:
            raise TypeError(f"{config.__name__}.{option.field}: only tuple[T, ...] fields become options")
        tp, nargs = item[0], "+"
        if isinstance(default, tuple):
            default = list(default)  # what argparse gives for values on the command line
    choices = option.choices
    if typing.get_origin(tp) is Literal:
        values = typing.get_args(tp)
        choices = choices or values
        tp = type(values[0])
    if tp is bool:
        if nargs is not None or default is not False:
            raise TypeError(f"{config.__name__}.{option.field}: a bool option must default to False")
        return OptionSpec(bool, None, None, True, False, False)
    if tp not in _SCALARS:
        raise TypeError(f"{config.__name__}.{option.field}: cannot make an option of type {tp!r}")
    required = default is dataclasses.MISSING
    return OptionSpec(tp, nargs, choices, False, required, None if required else default)


@dataclass(frozen=True)
class ConfigOptions(Generic[C]):
    """Chosen fields of the frozen dataclass ``config`` as options of one parser."""

    config: type[C]
    options: tuple[Option, ...]

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        for opt in self.options:
            spec = option_spec(self.config, opt)
            if spec.flag_only:
                parser.add_argument(opt.flag_name, action="store_true", help=opt.help)
                continue
            shown = f"default: {self.config.__name__}'s %(default)s" if spec.default is not None else None
            kind = finite_float if spec.type is float else spec.type
            kwargs: dict[str, Any] = {"type": kind, "help": "; ".join(t for t in (opt.help, shown) if t) or None}
            if spec.nargs is not None:
                kwargs["nargs"] = spec.nargs
            if spec.choices is not None:
                kwargs["choices"] = spec.choices
            if opt.metavar is not None:
                kwargs["metavar"] = opt.metavar
            if spec.required:
                kwargs["required"] = True
            else:
                kwargs["default"] = spec.default
            parser.add_argument(opt.flag_name, **kwargs)

    def values(self, args: argparse.Namespace) -> dict[str, Any]:
        """{field: value} of the parsed ``args`` (lists back to tuples)."""
        out: dict[str, Any] = {}
        for opt in self.options:
            value = getattr(args, opt.dest)
            out[opt.field] = tuple(value) if isinstance(value, list) else value
        return out

    def build(self, args: argparse.Namespace, **fixed: Any) -> C:
        """The config from the parsed ``args``; ``fixed`` sets the fields the options do not cover."""
        return self.config(**self.values(args), **fixed)

    def defaults(self) -> Mapping[str, Any]:
        """{dest: the dataclass default as argparse holds it} (what a drift test compares against)."""
        return {opt.dest: option_spec(self.config, opt).default for opt in self.options}
