"""Command lines derived from the typed configs: one source for each flag's type, default and help.

A flag's help is its dataclass field's docstring (read with `docstring_parser`), its type
the field's annotation, its default the field's default, its metavar the field's metadata
"metavar" where it has one; `add_fields` turns the fields of a config class into argparse
flags. User mistakes end in one line, `error: ...`, exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import functools
import os
import signal
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import docstring_parser

INTERRUPTED = 130
"""The exit code of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report Ctrl-C)."""


def stop_on_sigterm() -> None:
    """Handle SIGTERM (`kill PID`, a job scheduler's or a container's stop) as Ctrl-C: SIGINT's
    handler runs, so Ray Tune, which handles SIGINT, ends its step and saves its state, and
    outside Tune a KeyboardInterrupt unwinds as Ctrl-C's does (the run's lock released, the command
    to resume printed, exit INTERRUPTED); also where SIGINT is ignored, as in a job a script started
    in the background or under nohup. Without it Python ends at once, mid-write."""
    signal.signal(signal.SIGTERM, _as_ctrl_c)


def _as_ctrl_c(signum: int, frame) -> None:
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler):  # ignored (SIG_IGN), or the system's default
        raise KeyboardInterrupt
    handler(signal.SIGINT, frame)


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """`stop_on_sigterm` while the block runs (a command's main), the handler before it restored after."""
    before = signal.getsignal(signal.SIGTERM)
    stop_on_sigterm()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


class UsageError(ValueError):
    """A command-line value the user can fix; printed as one line, exit 2."""


def recorded_config(config_class: type, values: dict, where: str):
    """`config_class(**values)` for a config dataclass a run recorded (run.json's `configs`).

    Raises UsageError naming `where` and each key the class does not declare (a run recorded by
    another version, or an edited run.json) instead of Python's TypeError.
    """
    unknown = sorted(set(values) - {field.name for field in dataclasses.fields(config_class)})
    if unknown:
        raise UsageError(
            f"{where} holds {', '.join(unknown)}, which this version does not know; "
            "continue the run with the version that recorded it, or start a new run with another --out"
        )
    return config_class(**values)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors raise UsageError (one line, no usage block) for the caller to print."""

    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(f"{self.prog}: {message}; see --help")


@functools.cache
def field_help(config_class: type) -> dict[str, str]:
    """Each field's docstring (the string literal under it), by field name: the fields a class
    inherits with their bases' docstrings, a field it declares again with its own."""
    helps = {}
    for cls in reversed(config_class.__mro__[:-1]):  # object has none
        helps |= {p.arg_name: " ".join((p.description or "").split()) for p in docstring_parser.parse_from_object(cls).params}
    return helps


def given_path(text: str) -> Path:
    """argparse's type for a path argument: the path, where an empty one (which `Path` reads as
    the working folder, ".") is refused (argparse.ArgumentTypeError: one line, exit 2)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a folder or file")
    return Path(text)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_fields(
    group,
    config_class: type,
    fields: list[str],
    flags: dict[str, str] | None = None,
    metavars: dict[str, str] | None = None,
    suppress: bool = False,
) -> None:
    """Add one flag per dataclass field to an argparse parser or group.

    `flags` renames a field's flag (e.g. {"time_budget_min": "--time-budget"}); `metavars`
    names a value in the help where the field's metadata names none. With `suppress`, flags
    not given are absent from the parsed namespace (so a caller can tell what the user set),
    and the help still shows the field's default.
    """
    hints, declared = typing.get_type_hints(config_class), dataclasses.fields(config_class)
    defaults = {f.name: _default(f) for f in declared}
    metavars = {f.name: f.metadata["metavar"] for f in declared if "metavar" in f.metadata} | (metavars or {})
    for name in fields:
        kind, choices = _argparse_type(hints[name])
        default = defaults[name]
        shown = "" if default is dataclasses.MISSING else f" (default: {'none' if default is None else default})"
        options = {
            "help": (field_help(config_class).get(name, "") + shown).replace("%", "%%"),  # argparse formats help with %
            "default": argparse.SUPPRESS if suppress else default,
            "dest": name,
        }
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            options.update(type=kind, choices=choices, metavar=metavars.get(name))
        group.add_argument((flags or {}).get(name, flag(name)), **options)


def _default(field: dataclasses.Field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _argparse_type(hint) -> tuple[Any, tuple | None]:
    """(type converter, choices) for a field annotation such as `int | None` or a Literal."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return _argparse_type(args[0])
    if typing.get_origin(hint) is Literal:
        return type(args[0]), tuple(args)
    return hint, None


MACHINE_FAULTS = {errno.ENOSPC: "no space left", errno.EDQUOT: "disk quota exceeded", errno.EROFS: "read-only file system"}
"""Faults of the machine, not of the command: what they are called in a one-line error."""


def machine_fault(error: BaseException) -> tuple[str, str] | None:
    """(what, the path it hit, or "") when `error`, or an error it was raised from (Ray and Tune
    wrap them), is a full disk, an exceeded quota or a read-only file system; else None."""
    seen = []
    while error is not None and error not in seen:
        seen.append(error)
        if isinstance(error, OSError) and error.errno in MACHINE_FAULTS:
            return MACHINE_FAULTS[error.errno], str(error.filename or "")
        text = str(error)
        for code, what in MACHINE_FAULTS.items():
            if os.strerror(code) in text:
                return what, ""
        error = error.__cause__ or error.__context__
    return None


def fail(error: Exception | str) -> int:
    """Print a user mistake as one line on standard error; return exit code 2."""
    text = " ".join(str(error).split())
    print(text if text.startswith("error:") else f"error: {text}", file=sys.stderr)
    return 2
