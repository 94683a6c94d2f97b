"""What every command prints with: the stdout and stderr consoles, errors as messages and exit codes,
``-o table|json|yaml``, progress lines, and the two ways vcm writes a file a user asked for (text that may
not overwrite, and secrets created with mode 600).
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from vcluster_mgr import (
    errors,
)

out = Console()
err = Console(stderr=True)


def report(exc: errors.VcmError) -> None:
    """Print an error the way every command does: each spec problem on its own line."""
    # messages quote user input, which may look like rich markup: escape it
    if isinstance(exc, errors.SpecError):
        for e in exc.errors:
            err.print(f"[red]error[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
    else:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)


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
    err.print(f"[dim]{message}[/dim]", highlight=False)


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
