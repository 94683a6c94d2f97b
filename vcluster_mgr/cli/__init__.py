"""The ``vcm`` command line.

This package is the only place that prints or exits. Every other module raises an error from
``vcluster_mgr.errors``; ``printing.failures`` turns it into a message on stderr and an exit code:
0 success, 1 operation failed, 2 bad usage or invalid spec.

One module per command group, registered on the Typer app of ``apps`` when imported here (in the order
``vcm --help`` lists them); options shared by several commands are declared once in ``options``. The offline
commands (``spec_commands``, ``ci_commands``) never import the Pulumi SDK or the kubernetes client; the online
ones import the engine layers inside the command, so ``vcm validate`` and ``vcm --help`` start fast.
"""

from __future__ import annotations

# Imported in the order `vcm --help` lists the commands (Typer keeps registration order).
from vcluster_mgr.cli import apps

from vcluster_mgr.cli import spec_commands  # isort: skip
from vcluster_mgr.cli import tenant_commands  # isort: skip
from vcluster_mgr.cli import usage_commands  # isort: skip
from vcluster_mgr.cli import ephemeral_commands  # isort: skip
from vcluster_mgr.cli import control_plane_commands  # isort: skip
from vcluster_mgr.cli import snapshot_commands  # isort: skip
from vcluster_mgr.cli import verify_commands  # isort: skip
from vcluster_mgr.cli import ci_commands, local_commands, platform_commands, toolchain_commands  # isort: skip

__all__ = [
    "app",
    "apps",
    "ci_commands",
    "control_plane_commands",
    "ephemeral_commands",
    "local_commands",
    "main",
    "platform_commands",
    "snapshot_commands",
    "spec_commands",
    "tenant_commands",
    "toolchain_commands",
    "usage_commands",
    "verify_commands",
]

app = apps.app
"""The root ``vcm`` Typer app, every command registered."""


def main() -> None:
    """Entry point of the ``vcm`` and ``vcluster-mgr`` console scripts."""
    app()
