"""Every command of the ``vcm`` app, as the tests that walk the whole CLI see it (the bad-input walk, the
command kit's checks): one walk of Click's tree, so both cover the same commands."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

from vcluster_mgr import cli


def commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path of names, Click command) of every leaf command, e.g. (("platform", "unlock"), <Command>)."""
    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            yield path, command
            return
        for name, sub in subcommands.items():
            yield from walk(sub, (*path, name))

    yield from walk(typer.main.get_command(cli.app), ())
