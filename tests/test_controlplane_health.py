"""The pure parts of reading a control plane's health: which SyncError events recorded inside the virtual cluster
are problems (a refusal by the host is; a write conflict the syncer retries by itself is not), and the one-line
summary that says whether the virtual API's ``/readyz`` answered through the kubeconfig handed out, and why not;
the refusal of a pod deleted since is no problem any more. And, against a real socket, how the reading of
``/readyz`` tells a virtual API that takes the request and answers nothing (NOT ready) from one this machine does
not reach (the pods' readiness decides)."""

from __future__ import annotations

import socket
import threading
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from vcluster_mgr import cluster, controlplane_health


def _event(name: str, message: str, when: str) -> SimpleNamespace:
    return SimpleNamespace(reason="SyncError", message=message, count=1, last_timestamp=when, event_time=None,
                           involved_object=SimpleNamespace(kind="Pod", namespace="default", name=name,
                                                           uid=f"uid-{name}"))


# messages as the vcluster 0.36.1 syncer records them (seen on the local node)
REFUSED = ('Error syncing to host cluster: create object: pods "big" is forbidden: maximum memory usage per '
           'Container is 1Gi, but limit is 2Gi')
CONFLICT = ('Error syncing: patch host object: update object status: Operation cannot be fulfilled on pods "web-1": '
            'the object has been modified; please apply your changes to the latest version and try again')


def test_a_refusal_by_the_host_is_a_problem_and_a_retried_conflict_is_not() -> None:
    problems = controlplane_health.sync_problems([_event("web-1", CONFLICT, "2026-12-06T16:00:02Z"),
                                                  _event("big", REFUSED, "2026-12-06T16:00:01Z")])
    assert problems == [{"reason": "SyncError", "message": REFUSED, "count": 1,
                         "object": "virtual Pod/default/big"}]


def test_twin_every_refusal_is_kept_oldest_first() -> None:
    later = REFUSED.replace('"big"', '"bigger"')
    problems = controlplane_health.sync_problems([_event("bigger", later, "2026-12-06T16:00:09Z"),
                                                  _event("big", REFUSED, "2026-12-06T16:00:01Z")])
    assert [p["object"] for p in problems] == ["virtual Pod/default/big", "virtual Pod/default/bigger"]


def test_the_refusal_of_a_pod_deleted_since_is_left_out() -> None:
    events = [_event("big", REFUSED, "2026-12-06T16:00:01Z")]
    assert controlplane_health.sync_problems(events, live_pods={"uid-other"}) == []


def test_twin_the_refusal_of_a_pod_still_there_or_of_pods_not_listed_is_kept() -> None:
    events = [_event("big", REFUSED, "2026-12-06T16:00:01Z")]
    assert len(controlplane_health.sync_problems(events, live_pods={"uid-big"})) == 1
    assert len(controlplane_health.sync_problems(events, live_pods=None)) == 1


NOT_READY = "read: /readyz answered 500: Internal Server Error: check(s) failed: etcd, etcd-readiness"


def _health(virtual_api_ready: bool | None) -> controlplane_health.Health:
    pods = [{"name": "vteam-0", "kind": "controlPlane", "phase": "Running", "ready": True}]
    inside = NOT_READY if virtual_api_ready is False else "read"
    return controlplane_health.Health(virtual_api_ready is not False, 1, pods, [], inside, virtual_api_ready)


def test_the_summary_says_what_the_virtual_apis_readyz_answered() -> None:
    assert _health(True).summary().endswith("virtual API /readyz ok")
    assert _health(False).summary().startswith("NOT ready") and "virtual API /readyz NOT ok" in _health(False).summary()
    assert "/readyz" not in _health(None).summary()  # not asked: not reachable from here


def test_the_summary_says_why_the_virtual_api_is_not_ready() -> None:
    assert _health(False).summary().endswith(
        "virtual API /readyz NOT ok (/readyz answered 500: Internal Server Error: check(s) failed: etcd, "
        "etcd-readiness)")
    assert "answered" not in _health(True).summary()


# the kubelet's event when an HTTP readiness probe fails (the control plane pod's probe is the virtual API's
# /readyz through the syncer, which answers 500 with its backing store down)
PROBE = "Readiness probe failed: HTTP probe failed with statuscode: 500"


def _host_event(reason: str, kind: str, name: str, message: str, when: str) -> SimpleNamespace:
    return SimpleNamespace(reason=reason, message=message, count=3, last_timestamp=when, event_time=None,
                           involved_object=SimpleNamespace(kind=kind, name=name))


def _pods(ready: bool) -> list[dict[str, Any]]:
    return [{"name": "vteam-0", "kind": "controlPlane", "phase": "Running", "ready": ready},
            {"name": "web-x-default-x-vteam", "kind": "synced", "phase": "Running", "ready": True}]


def test_a_failed_probe_of_an_unready_control_plane_pod_is_the_reason_given() -> None:
    events = [_host_event("Unhealthy", "Pod", "vteam-0", PROBE, "2026-12-07T02:00:05Z"),
              _host_event("FailedCreate", "StatefulSet", "vteam", "forbidden", "2026-12-07T02:00:01Z")]
    problems = controlplane_health.host_problems(events, "vteam", _pods(ready=False))
    assert [(p["reason"], p["object"]) for p in problems] == [("FailedCreate", "StatefulSet/vteam"),
                                                              ("Unhealthy", "Pod/vteam-0")]
    health = controlplane_health.Health(False, 1, _pods(ready=False), problems)
    assert health.summary().startswith("NOT ready: 0/1 control plane pod(s) ready")
    assert f"Unhealthy Pod/vteam-0: {PROBE}" in health.summary()


def test_twin_the_failed_probes_of_a_ready_pod_or_of_a_pod_gone_are_no_reason() -> None:
    # a pod fails its probe a few times as it starts, and is Ready after: those events outlive the start by an hour
    events = [_host_event("Unhealthy", "Pod", "vteam-0", PROBE, "2026-12-07T02:00:05Z"),
              _host_event("Unhealthy", "Pod", "vteam-gone", PROBE, "2026-12-07T02:00:06Z")]
    assert controlplane_health.host_problems(events, "vteam", _pods(ready=True)) == []
    # the same events, the pod unready: only the one about a pod that is there
    assert [p["object"] for p in controlplane_health.host_problems(events, "vteam", _pods(ready=False))] == [
        "Pod/vteam-0"]


def _silent_server() -> str:
    """A server on 127.0.0.1 that takes connections and requests and never answers."""
    sock = socket.create_server(("127.0.0.1", 0))

    def hold() -> None:
        held = []
        while True:
            held.append(sock.accept()[0])

    threading.Thread(target=hold, daemon=True).start()
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _nobody() -> str:
    """A port of 127.0.0.1 nothing listens on (taken from the kernel, then given back): connections are refused."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _read_inside(monkeypatch: pytest.MonkeyPatch, server: str) -> tuple[str, bool | None, list[dict[str, Any]]]:
    kubeconfig = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]})
    monkeypatch.setattr(cluster, "control_plane_kubeconfig", lambda conn, tenant: kubeconfig)
    monkeypatch.setattr(controlplane_health, "READYZ_TIMEOUT", 1.0)
    return controlplane_health._read_inside(SimpleNamespace(), SimpleNamespace(name="vteam"))  # type: ignore[arg-type]


def test_a_virtual_api_that_takes_readyz_and_answers_nothing_is_not_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    inside, ready, problems = _read_inside(monkeypatch, _silent_server())
    assert (inside, ready, problems) == ("read: /readyz did not answer within 1s", False, [])


def test_twin_a_virtual_api_this_machine_does_not_reach_leaves_readiness_to_the_pods(
        monkeypatch: pytest.MonkeyPatch) -> None:
    inside, ready, _ = _read_inside(monkeypatch, _nobody())
    assert inside.startswith("not reachable from here") and ready is None, inside
