"""The programs vcm runs send the engine no SDK debug messages (three blocking calls per resource otherwise),
and every other message still goes (``workspace.stacks.without_sdk_debug``). Wiring only: what it saves is
measured in the README's Benchmarks."""

from __future__ import annotations

import importlib
from typing import Any

import pulumi
import pulumi.log
import pytest

from vcluster_mgr.workspace import stacks


class _Engine:
    """Stands in for the engine's log endpoint: records the severity of every message sent to it."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    def Log(self, request: Any) -> None:  # noqa: N802  (the engine's RPC name)
        self.sent.append(request.severity)


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> _Engine:
    # the SDK's own functions again: a program an earlier test ran in this process has turned debug off for good
    importlib.reload(pulumi.log)
    fake = _Engine()
    monkeypatch.setattr(pulumi.log, "get_engine", lambda: fake)
    monkeypatch.setattr(pulumi.log, "debug", pulumi.log.debug)  # put back the SDK's after the test
    return fake


def _program() -> str:
    pulumi.log.debug("registering resource: ty=kubernetes:core/v1:Namespace, name=ns")
    pulumi.log.info("an info line")
    return "ran"


def test_a_program_run_by_vcm_sends_no_debug_messages(engine: _Engine) -> None:
    assert stacks.without_sdk_debug(_program)() == "ran"
    assert engine.sent == [pulumi.log.engine_pb2.INFO]


def test_twin_the_sdk_left_alone_sends_each_debug_message(engine: _Engine) -> None:
    assert _program() == "ran"
    assert engine.sent == [pulumi.log.engine_pb2.DEBUG, pulumi.log.engine_pb2.INFO]
