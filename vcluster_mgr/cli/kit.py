"""The command kit: what every ``vcm`` command gets without writing it again.

* ``App``, a Typer subclass whose ``command`` wraps each command once: the package's errors become a message
  and the documented exit code (``printing.failures``), so no command opens that by hand.
* **Option bundles**: a command parameter whose type is a dataclass (``options.Access``) stands for all of
  that dataclass's fields, each an option declared once with its help and ``envvar``; the kit spreads them
  into the command's signature for Typer and hands the command one built instance. A dataclass field may be
  a bundle in turn. A new option shared by many commands is one more field.
* **Old spellings**: a command can accept a spelling that user scripts may still use (``-o FILE`` where
  ``-o`` is now a format elsewhere, ``--wait SECONDS`` where ``--wait`` is now a flag) by rewriting it before
  parsing, with a deprecation message on stderr.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import typer
import typer.core

from vcluster_mgr.cli import printing

F = TypeVar("F", bound=Callable[..., Any])


# ---------------------------------------------------------------------------------------------
# Option bundles
# ---------------------------------------------------------------------------------------------


def is_bundle(annotation: object) -> bool:
    """Whether a parameter's type is an option bundle (a dataclass type)."""
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


def _bundle_parameters(bundle: type[Any]) -> list[inspect.Parameter]:
    """The bundle's options as keyword-only parameters, nested bundles spread in place."""
    hints = typing.get_type_hints(bundle, include_extras=True)
    found: list[inspect.Parameter] = []
    for field in dataclasses.fields(bundle):
        annotation = hints[field.name]
        if is_bundle(annotation):
            found += _bundle_parameters(annotation)
            continue
        if field.default is dataclasses.MISSING:
            raise TypeError(f"option bundle {bundle.__name__}: field {field.name} needs a default")
        found.append(inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=field.default,
                                       annotation=annotation))
    return found


def _build(bundle: type[Any], values: dict[str, Any]) -> Any:
    """An instance of ``bundle`` from the parsed options (removed from ``values``)."""
    hints = typing.get_type_hints(bundle, include_extras=True)
    kwargs = {}
    for field in dataclasses.fields(bundle):
        annotation = hints[field.name]
        kwargs[field.name] = _build(annotation, values) if is_bundle(annotation) else values.pop(field.name)
    return bundle(**kwargs)


def spread(command: F) -> Callable[..., Any]:
    """``command`` as Typer should see it: each bundle parameter spread into its options, and every error of
    the package turned into a message and an exit code (``printing.failures``)."""
    hints = typing.get_type_hints(command, include_extras=True)
    parameters: list[inspect.Parameter] = []
    bundles: dict[str, type[Any]] = {}
    for param in inspect.signature(command).parameters.values():
        annotation = hints.get(param.name, param.annotation)
        if is_bundle(annotation):
            bundles[param.name] = annotation
            parameters += _bundle_parameters(annotation)
        else:
            parameters.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=annotation))
    names = [p.name for p in parameters]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise TypeError(f"command {command.__name__}: option names given twice: {', '.join(clashes)}")

    @functools.wraps(command)
    def run(**values: Any) -> Any:
        with printing.failures():
            for name, bundle in bundles.items():
                values[name] = _build(bundle, values)
            return command(**values)

    run.__signature__ = inspect.Signature(parameters, return_annotation=None)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    return run


# ---------------------------------------------------------------------------------------------
# Old spellings
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OldSpelling:
    """An option a user script may still spell the old way: ``option VALUE`` is rewritten by ``rewrite``
    (None: the value is of the new kind, leave it) and a deprecation message says what to write instead."""

    #: every way the old option was written (``-o``, ``--output``)
    names: tuple[str, ...]
    #: the old value -> the arguments that replace ``option VALUE``, or None to leave them alone
    rewrite: Callable[[str], list[str] | None]
    #: what to write now, for the message
    advice: str


def _split(arg: str, names: Sequence[str]) -> tuple[str, str | None] | None:
    """``(name, inline value or None)`` when ``arg`` is one of ``names`` (``--output=x``, ``-ox``), else None."""
    for name in names:
        if arg == name:
            return name, None
        if name.startswith("--") and arg.startswith(name + "="):
            return name, arg[len(name) + 1:]
        if not name.startswith("--") and arg.startswith(name) and len(arg) > len(name):
            return name, arg[len(name):]
    return None


def rewrite_old_spellings(args: list[str], spellings: Sequence[OldSpelling]) -> tuple[list[str], list[str]]:
    """``args`` with every old spelling rewritten, and a deprecation message for each one found."""
    out: list[str] = []
    notes: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out += args[i:]
            break
        replaced: tuple[list[str], int] | None = None
        for old in spellings:
            found = _split(arg, old.names)
            if found is None:
                continue
            name, value = found
            taken = 1
            if value is None:
                if i + 1 >= len(args):
                    break
                value, taken = args[i + 1], 2
            new = old.rewrite(value)
            if new is not None:
                notes.append(f"{name} {value} is deprecated: {old.advice}")
                replaced = (new, taken)
            break
        if replaced is None:
            out.append(arg)
            i += 1
        else:
            out += replaced[0]
            i += replaced[1]
    return out, notes


class Command(typer.core.TyperCommand):
    """A Typer command that accepts its ``old_spellings`` (set per command by ``App.command``)."""

    old_spellings: Sequence[OldSpelling] = ()

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        args, notes = rewrite_old_spellings(args, self.old_spellings)
        for note in notes:
            printing.err.print(f"warning: {note}", markup=False, highlight=False, soft_wrap=True)
        return super().parse_args(ctx, args)


# ---------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------


class App(typer.Typer):
    """A Typer app whose commands get the kit: error handling once, option bundles, old spellings."""

    def command(
        self, name: str | None = None, *, old_spellings: Sequence[OldSpelling] = (), **kwargs: Any
    ) -> Callable[[F], F]:
        cls = type("Command", (Command,), {"old_spellings": tuple(old_spellings)}) if old_spellings else Command
        register = super().command(name, cls=cls, **kwargs)

        def decorator(command: F) -> F:
            register(spread(command))
            return command  # callable as before, with its bundles as arguments

        return decorator
