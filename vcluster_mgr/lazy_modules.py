"""Modules imported on first use: the heavy SDKs stay out of the commands that never touch them.

A command that proves a tenant unchanged (``vcm apply`` on the fast path) renders, reads the state and lists
a few objects: it never runs the engine, so it has no use for the Pulumi SDK (0.1 s of CPU to import on this
machine), the Automation API or ``cryptography`` (the local cluster's PKI). Yet the modules that serve both
paths name them at the top. ``module(name)`` stands in for such a module: the real import happens the first
time one of its attributes is read, inside the function that needs it, and every later read is a dict look-up.

Used with the real import for the type checker and the import contracts::

    if TYPE_CHECKING:
        import pulumi
    else:
        pulumi = lazy_modules.module("pulumi")

A class that derives from a class of such a module needs the real import; it lives in a module of its own,
itself imported this way (``workspace.engine``). Nothing here imports anything at import time.
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class _Deferred(types.ModuleType):
    """A stand-in for the module of its name: reading an attribute imports the module and reads it there."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)  # copy, pickle and inspection ask for these: no import for them
        return getattr(importlib.import_module(self.__name__), attr)


def module(name: str) -> types.ModuleType:
    """A stand-in for the module ``name`` that imports it on first use (the module docstring)."""
    return _Deferred(name)
