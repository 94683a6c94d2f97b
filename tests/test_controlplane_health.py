"""The pure parts of reading a control plane's health: which SyncError events recorded inside the virtual cluster
are problems (a refusal by the host is; a write conflict the syncer retries by itself is not), and the one-line
summary that says whether the virtual API's ``/readyz`` answered through the kubeconfig handed out, and why not;
the refusal of a pod deleted since is no problem any more."""

from __future__ import annotations

from types import SimpleNamespace

from vcluster_mgr import controlplane_health


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
