"""What every command prints with: the stdout and stderr consoles, errors as messages and exit codes,
``-o table|json|yaml``, tables, times, progress lines, and the two ways vcm writes a file a user asked for
(text that may not overwrite, and secrets created with mode 600).

Conventions, as kubectl and helm users expect them: data on stdout, progress and messages on stderr (so
``vcm list -o json | jq`` always works); ``NO_COLOR`` (any value) or ``--no-color`` turns colour off;
``-q/--quiet`` keeps only data and errors. A table goes to a terminal as a Rich table whose cells wrap
(never cut); anywhere else (a pipe, a file, a CI log) as plain aligned columns, every value in full.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from vcluster_mgr import (
    errors,
)


@dataclasses.dataclass
class Settings:
    """The output settings of this run, from the root options (``vcm --quiet --verbose --no-color ...``)."""

    #: only data (stdout) and errors: no progress, no messages
    quiet: bool = False
    #: progress as one line per engine event (every resource), as before the live view
    verbose: bool = False
    #: no colour, as NO_COLOR asks (Rich reads NO_COLOR itself)
    no_color: bool = False


settings = Settings()
out = Console(soft_wrap=True)
"""stdout: data only (tables, JSON, YAML, kubeconfigs)."""
err = Console(stderr=True, soft_wrap=True)
"""stderr: progress and messages; silent with ``--quiet``."""
errors_console = Console(stderr=True, soft_wrap=True)
"""stderr for errors: shown even with ``--quiet``."""


def configure(*, quiet: bool = False, verbose: bool = False, no_color: bool = False) -> None:
    """Set this run's output settings and make the consoles anew (so they see this run's environment and
    streams: NO_COLOR, COLUMNS, TTY_COMPATIBLE, and a test runner's captured stdout and stderr)."""
    global out, err, errors_console
    settings.quiet, settings.verbose, settings.no_color = quiet, verbose, no_color
    colour = True if no_color else None  # None: Rich decides, honouring NO_COLOR
    # soft_wrap: a message is never broken into lines at the console's width (a pipe's is 80)
    out = Console(no_color=colour, soft_wrap=True)
    err = Console(stderr=True, no_color=colour, quiet=quiet, soft_wrap=True)
    errors_console = Console(stderr=True, no_color=colour, soft_wrap=True)


def report(exc: errors.VcmError) -> None:
    """Print an error the way every command does: each spec problem on its own line."""
    # messages quote user input, which may look like rich markup: escape it
    if isinstance(exc, errors.SpecError):
        for e in exc.errors:
            errors_console.print(f"[red]error[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
    else:
        errors_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)


def failure(message: str) -> None:
    """A line about something that failed (markup allowed): on stderr even with ``--quiet``."""
    errors_console.print(message, highlight=False, soft_wrap=True)


def interactive(console: Console) -> bool:
    """Whether ``console`` is a terminal that can show a Rich table (not a pipe, a file, a CI log or TERM=dumb;
    ``TTY_COMPATIBLE=0|1`` overrides, as Rich reads it)."""
    return console.is_terminal and not console.is_dumb_terminal


def _plain(cell: object) -> str:
    """A cell's text without markup, on one line."""
    text = cell.plain if isinstance(cell, Text) else Text.from_markup(str(cell)).plain
    return " ".join(text.split("\n")).rstrip()


def _block(cell: object) -> list[str]:
    """A cell's text without markup, its own lines kept."""
    text = cell.plain if isinstance(cell, Text) else Text.from_markup(str(cell)).plain
    return [ln.rstrip() for ln in text.strip().splitlines()] or ["-"]


def table_lines(table: Table, blocks: Sequence[str] = ()) -> list[str]:
    """A table as plain aligned columns (two spaces apart), its header first unless it has none; nothing cut.

    ``blocks`` names columns (by header) of long prose: each is shown under its row as an indented block
    (``  tried: ...``, further lines indented once more) instead of a column padded to its widest cell,
    so one long cell does not pad every line of the table to its length.
    """
    headers = [_plain(col.header) for col in table.columns]
    grid = [i for i, h in enumerate(headers) if h not in blocks]
    prose = [i for i, h in enumerate(headers) if h in blocks]
    cells = [list(col.cells) for col in table.columns]
    rows = [[_plain(cells[i][r]) for i in grid] for r in range(table.row_count)]
    if table.show_header:
        rows.insert(0, [headers[i].upper() for i in grid])
    widths = [max((len(row[k]) for row in rows), default=0) for k in range(len(grid))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    if not prose:
        return lines
    out = lines[:1] if table.show_header else []
    for r, line in enumerate(lines[1:] if table.show_header else lines):
        out.append(line)
        for i in prose:
            first, *more = _block(cells[i][r])
            out += [f"  {headers[i]}: {first}", *(f"    {ln}" for ln in more)]
    return out


def print_table(table: Table, *, blocks: Sequence[str] = ()) -> None:
    """A table on stdout: on a terminal a Rich table whose cells wrap rather than being cut; elsewhere plain
    aligned columns with every value in full (the title, if any, goes to stderr as a message), the ``blocks``
    columns of long prose as blocks under each row (``table_lines``)."""
    if interactive(out):
        for col in table.columns:
            col.overflow = "fold"
        out.print(table)
        return
    if table.title:
        err.print(_plain(table.title), markup=False, highlight=False, soft_wrap=True)
    for line in table_lines(table, blocks):
        out.print(line, markup=False, highlight=False, soft_wrap=True, emoji=False)


def _age(seconds: float) -> str:
    ago = seconds >= 0
    s = abs(seconds)
    if s < 60:
        text = f"{int(s)} s"
    elif s < 3600:
        text = f"{int(s // 60)} min"
    elif s < 48 * 3600:
        text = f"{int(s // 3600)} h"
    else:
        text = f"{int(s // 86400)} d"
    return f"{text} ago" if ago else f"in {text}"


def when(value: datetime.datetime | str | None, now: datetime.datetime | None = None) -> str:
    """A moment as local time to the second and its age: ``2026-12-01 07:07:33 (12 min ago)``, or
    ``(in 2 h)`` for one to come. Naive datetimes and ISO strings without an offset are UTC (as the engine
    and the stacks record them); ``-`` for none, and text that is not a time is shown as it is."""
    if value is None or value == "":
        return "-"
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    assert isinstance(moment, datetime.datetime)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    current = now or datetime.datetime.now(datetime.UTC)
    local = moment.astimezone()
    return f"{local:%Y-%m-%d %H:%M:%S} ({_age((current - moment).total_seconds())})"


@contextmanager
def failures() -> Iterator[None]:
    """Turn the package's errors into a message and the documented exit code (1 or 2)."""
    try:
        yield
    except errors.VcmError as exc:
        report(exc)
        raise typer.Exit(exc.exit_code) from exc


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    yaml = "yaml"


def emit(data: Any, fmt: OutputFormat) -> bool:
    """Print ``data`` as JSON or YAML when asked; False means the caller prints its table."""
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        return True
    if fmt is OutputFormat.yaml:
        typer.echo(yaml.safe_dump(data, sort_keys=False), nl=False)
        return True
    return False


def progress(message: str) -> None:
    err.print(f"[dim]{escape(message)}[/dim]", highlight=False, soft_wrap=True)


def write_or_echo(text: str, output: Path | None, force: bool) -> None:
    """Print ``text``, or write it to ``output`` (its folder made if missing), refusing to overwrite without
    ``force``."""
    if output is None:
        typer.echo(text, nl=False)
        return
    if output.exists() and not force:
        raise errors.UsageError(f"{output} already exists; pass --force to overwrite it")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise errors.UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc
    err.print(f"wrote {output}", markup=False, highlight=False, soft_wrap=True)


def tenant_progress(tenant: str, message: str) -> None:
    """One progress line for a tenant (the ``--verbose`` form: every engine event)."""
    err.print(f"[bold]{escape(tenant)}[/bold] {escape(message)}", highlight=False, soft_wrap=True)


def check_output_file(path: Path, option: str) -> None:
    """Refuse, before any work is done, an output file that cannot be created: its folder must exist."""
    if path.is_dir():
        raise errors.UsageError(f"{option}: {path} is a folder, not a file")
    if not path.parent.is_dir():
        raise errors.UsageError(f"{option}: the folder {path.parent} does not exist")


def write_secret(path: Path, text: str) -> None:
    """The one way vcm writes a secret (a kubeconfig): to ``path``, mode 600 even if the file existed before."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(text)
    except OSError as exc:
        raise errors.UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_kubeconfig(text: str, output_file: Path | None, who: str) -> None:
    """To a file created with mode 600, or to stdout; never into logs."""
    if output_file:
        write_secret(output_file, text)
        err.print(f"kubeconfig for {escape(who)} written to {output_file}", soft_wrap=True)
    else:
        err.print(f"kubeconfig for {escape(who)} (on stdout)", soft_wrap=True)
        typer.echo(text, nl=False)
