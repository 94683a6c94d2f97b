"""The cluster-access layer (``vcluster_mgr.cluster``) offline: every rule of the funnel (the default timeout,
each HTTP status and each "no answer" turned into its typed error naming the server, the retry of 429 and 503
with Retry-After honoured, bounded and announced), the pure rules the readers use (drift comparison, the API
server's addresses, namespace claims, kubeconfigs, the recorded verify result), the impersonation headers and a
connection's lifetime. The same errors against a real API server are in tests/integration/test_cluster_errors.py.
"""

from __future__ import annotations

import datetime
import json
import socket
import threading
from typing import Any

import pytest
import urllib3
import yaml
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from vcluster_mgr import cluster, errors, naming, platformconfig
from vcluster_mgr.cluster import (
    claims,
    comparison,
    funnel,
    impersonation,
    kubeconfigs,
    retrying,
    translation,
    verify_annotation,
)

SERVER = "https://127.0.0.1:6443"


def _api_error(status: int, message: str | None = None, headers: dict[str, str] | None = None) -> ApiException:
    exc = ApiException(status=status, reason={403: "Forbidden", 404: "Not Found", 409: "Conflict",
                                              429: "Too Many Requests", 503: "Service Unavailable"}.get(status, "Err"))
    if message is not None:
        exc.body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message})
    exc.headers = headers
    return exc


# ---------------------------------------------------------------------------------------------------
# translation: status -> typed error
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "kind"), [
    (404, errors.NotFoundError),
    (403, errors.ForbiddenError),
    (409, errors.ConflictError),
    (429, errors.TooManyRequestsError),
])
def test_each_status_has_its_error(status: int, kind: type[errors.ClusterError]) -> None:
    err = translation.from_api_exception(_api_error(status, "the server's words"), server=SERVER, what="reading x")
    assert type(err) is kind
    assert isinstance(err, errors.VcmError) and err.exit_code == 1
    assert err.server == SERVER and err.status == status and err.detail == "the server's words"
    assert str(err) == f"reading x on {SERVER}: {status} the server's words"


def test_other_statuses_are_plain_cluster_errors() -> None:
    err = translation.from_api_exception(_api_error(422, "spec.x: Invalid value"), server=SERVER, what="creating y")
    assert type(err) is errors.ClusterError
    assert str(err) == f"creating y on {SERVER}: 422 spec.x: Invalid value"


def test_without_a_status_body_the_reason_is_quoted() -> None:
    err = translation.from_api_exception(_api_error(403), server=SERVER, what="reading x")
    assert err.detail == "Forbidden"
    exc = _api_error(500)
    exc.body = "<html>not json</html>"
    assert translation.from_api_exception(exc, server=SERVER, what="w").detail == "Err"


READYZ_DOWN = (b"[+]ping ok\n[+]log ok\n[-]etcd failed: reason withheld\n[+]poststarthook/start-informers ok\n"
               b"[-]etcd-readiness failed: reason withheld\nreadyz check failed\n")


def test_a_health_endpoints_answer_names_the_checks_that_failed() -> None:
    exc = _api_error(500)
    exc.body = READYZ_DOWN.decode()
    err = translation.from_api_exception(exc, server=SERVER, what="asking /readyz")
    assert err.detail == "Err: check(s) failed: etcd, etcd-readiness"


def test_twin_a_health_answer_without_a_failed_check_is_quoted_by_its_reason() -> None:
    exc = _api_error(500)
    exc.body = READYZ_DOWN.decode().replace("[-]", "[+]")
    assert translation.from_api_exception(exc, server=SERVER, what="asking /readyz").detail == "Err"


def test_status_zero_means_no_answer() -> None:
    err = translation.from_api_exception(ApiException(status=0, reason="connection refused"), server=SERVER, what="w")
    assert type(err) is errors.UnreachableError
    assert str(err) == f"the API server {SERVER} is not reachable: connection refused"


def test_a_refused_exec_upgrade_keeps_its_status() -> None:
    """The stream client reports a websocket the server refused as status 0 with the answer in the reason."""
    exc = ApiException(status=0, reason="Handshake status 403 Forbidden -+-+- {} -+-+- b'pods is forbidden'")
    err = translation.from_api_exception(exc, server=SERVER, what="exec in pod a/b")
    assert type(err) is errors.ForbiddenError and err.status == 403
    assert translation.handshake_status("Handshake status 404 Not Found") == 404
    assert translation.handshake_status("[SSL: CERTIFICATE_VERIFY_FAILED]") is None


def test_the_one_unreachable_message_names_the_server() -> None:
    err = translation.unreachable(SERVER, OSError("boom"))
    assert isinstance(err, errors.ClusterError) and err.status is None
    assert str(err) == f"the API server {SERVER} is not reachable: boom"


# ---------------------------------------------------------------------------------------------------
# retrying: which answers, how long
# ---------------------------------------------------------------------------------------------------

NOW = datetime.datetime(2026, 12, 6, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(("value", "seconds"), [
    ("3", 3.0),
    (" 0 ", 0.0),
    ("Sun, 06 Dec 2026 12:00:07 GMT", 7.0),
    ("Sun, 06 Dec 2026 11:00:00 GMT", 0.0),  # a date in the past: go now
    (None, None),
    ("", None),
    ("soon", None),
    ("-1", None),
])
def test_retry_after_is_seconds_or_a_date(value: str | None, seconds: float | None) -> None:
    assert retrying.retry_after_seconds(value, now=NOW) == seconds


def test_429_and_503_are_retried_with_backoff_then_given_up() -> None:
    policy = retrying.RetryPolicy(attempts=4, first_delay=0.5, max_delay=10.0)
    assert [retrying.delay(policy, 429, None, tries) for tries in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, None]
    assert retrying.delay(policy, 503, None, 1) == 0.5


def test_retry_after_is_honoured_and_capped() -> None:
    policy = retrying.RetryPolicy(attempts=5, first_delay=0.5, max_delay=10.0)
    assert retrying.delay(policy, 429, "4", 1, now=NOW) == 4.0
    assert retrying.delay(policy, 429, "600", 1, now=NOW) == 10.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 500, 504, None])
def test_other_answers_are_not_retried(status: int | None) -> None:
    """A create that timed out (504) or failed inside (500) may have happened: sending it again could do it twice."""
    assert retrying.delay(retrying.DEFAULT, status, "1", 1) is None


def test_the_wait_says_what_it_waits_for() -> None:
    text = retrying.waiting_message(server=SERVER, what="listing pods", status=429, seconds=2.0, tries=1,
                                    policy=retrying.DEFAULT, retry_after="2")
    assert text == (f"the API server {SERVER} answered 429 Too Many Requests to listing pods; waiting 2.0s "
                    f"(as its Retry-After asks) before try 2 of 5")
    text = retrying.waiting_message(server=SERVER, what="x", status=503, seconds=1.0, tries=2,
                                    policy=retrying.DEFAULT, retry_after=None)
    assert "503 Service Unavailable" in text and "(backing off)" in text and "try 3 of 5" in text


# ---------------------------------------------------------------------------------------------------
# the funnel: timeout, retries, translation, all in one call
# ---------------------------------------------------------------------------------------------------


class _Server:
    """A stand-in API method: raises the given answers in turn, then returns ``"ok"``; records its calls."""

    def __init__(self, *answers: BaseException) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append({"args": args, **kwargs})
        if self.answers:
            raise self.answers.pop(0)
        return "ok"


def _call(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, list[float], list[str]]:
    waits: list[float] = []
    said: list[str] = []
    result = funnel.call(SERVER, "listing pods", fn, *args, notify=said.append, sleep=waits.append, **kwargs)
    return result, waits, said


def test_the_default_timeout_is_sent_unless_the_caller_gives_one() -> None:
    fn = _Server()
    assert _call(fn, "ns", label_selector="a=b")[0] == "ok"
    assert fn.calls == [{"args": ("ns",), "label_selector": "a=b", "_request_timeout": funnel.REQUEST_TIMEOUT}]
    fn = _Server()
    _call(fn, _request_timeout=60)
    assert fn.calls[0]["_request_timeout"] == 60


def test_a_429_is_retried_after_its_retry_after_and_said() -> None:
    fn = _Server(_api_error(429, headers={"Retry-After": "2"}), _api_error(429, headers={"retry-after": "1"}))
    result, waits, said = _call(fn)
    assert result == "ok" and len(fn.calls) == 3
    assert waits == [2.0, 1.0]
    assert said[0].startswith(f"the API server {SERVER} answered 429 Too Many Requests to listing pods; waiting 2.0s")


def test_a_503_is_retried_with_backoff() -> None:
    fn = _Server(_api_error(503), _api_error(503))
    result, waits, _ = _call(fn)
    assert result == "ok" and waits == [0.5, 1.0]


def test_retries_are_bounded_then_the_typed_error_names_the_server() -> None:
    fn = _Server(*[_api_error(429, "too many requests, please try again later") for _ in range(10)])
    with pytest.raises(errors.TooManyRequestsError, match="listing pods on https://127.0.0.1:6443: 429 too many"):
        _call(fn)
    assert len(fn.calls) == retrying.DEFAULT.attempts


def test_a_refusal_is_not_retried() -> None:
    fn = _Server(_api_error(403, 'pods is forbidden: User "x" cannot list resource "pods"'))
    with pytest.raises(errors.ForbiddenError) as caught:
        _call(fn)
    assert len(fn.calls) == 1
    assert caught.value.detail.startswith("pods is forbidden")
    assert isinstance(caught.value.__cause__, ApiException)


@pytest.mark.parametrize("failure", [
    ConnectionRefusedError(111, "Connection refused"),
    MaxRetryError(None, "/api", NewConnectionError(None, "Failed to establish a new connection")),  # type: ignore[arg-type]
    ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer")),
    TimeoutError("timed out"),
])
def test_no_answer_is_unreachable_at_once(failure: BaseException) -> None:
    fn = _Server(failure)
    with pytest.raises(errors.UnreachableError, match=f"^the API server {SERVER} is not reachable: ") as caught:
        _call(fn)
    assert len(fn.calls) == 1  # not retried: the person learns at once
    assert caught.value.server == SERVER


def test_a_raw_response_is_checked_like_a_typed_one() -> None:
    class Raw:
        status, reason, data = 404, "Not Found", b'{"kind":"Status","message":"namespaces \\"x\\" not found"}'
        headers = {"Content-Type": "application/json"}

        def getheaders(self) -> dict[str, str]:
            return self.headers

    with pytest.raises(errors.NotFoundError, match=r'namespaces "x" not found'):
        funnel.call(SERVER, "reading namespace x", lambda **_: funnel.raise_for_status(Raw()))
    Raw.status = 200
    ok = Raw()
    assert funnel.raise_for_status(ok) is ok


def test_not_found_as_none() -> None:
    def missing() -> str:
        raise errors.NotFoundError("gone", server=SERVER, status=404)

    assert funnel.not_found_is_none(missing) is None
    assert funnel.not_found_is_none(lambda: "here") == "here"


# ---------------------------------------------------------------------------------------------------
# a connection: one per target per command, closed once
# ---------------------------------------------------------------------------------------------------


def _kubeconfig(tmp_path: Any, server: str = SERVER) -> platformconfig.Target:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }))
    return platformconfig.Target(name="here", kubeconfig=str(path))


def test_a_connection_closes_once_when_its_block_ends(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    target = _kubeconfig(tmp_path)
    closed: list[bool] = []
    with cluster.connect(target) as conn:
        monkeypatch.setattr(conn.api, "close", lambda: closed.append(True))
        assert conn.server == SERVER and conn.target is target
        assert conn.core is conn.core  # an API group is made once per connection
    conn.close()
    assert closed == [True]


def test_a_connection_to_nobody_is_unreachable(tmp_path: Any) -> None:
    """The whole path through a real client: nothing listens on port 9 of 127.0.0.1 (discard; never served)."""
    with cluster.connect(_kubeconfig(tmp_path, "https://127.0.0.1:9")) as conn, \
            pytest.raises(errors.UnreachableError, match=r"^the API server https://127.0.0.1:9 is not reachable"):
        conn.call("reading namespace default", conn.core.read_namespace, "default", _request_timeout=2)


class _HttpServer:
    """A plain-HTTP server on 127.0.0.1 that counts the requests it takes and answers each with ``answer``
    (raw bytes), or holds it unanswered when ``answer`` is None: a server that is there and not serving."""

    def __init__(self, answer: bytes | None) -> None:
        self.answer, self.requests = answer, 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        held = []
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.recv(65536)
            self.requests += 1
            if self.answer is None:
                held.append(conn)
            else:
                conn.sendall(self.answer)
                conn.close()


def _get_readyz(tmp_path: Any, url: str) -> str:
    with cluster.connect(_kubeconfig(tmp_path, url)) as conn:
        return conn.get_text("asking /readyz", "/readyz", timeout=1)


def test_get_text_of_a_server_that_takes_the_request_and_never_answers_is_no_answer_asked_once(tmp_path: Any
                                                                                             ) -> None:
    server = _HttpServer(None)
    with pytest.raises(errors.NoAnswerError, match=r"did not answer in time"):
        _get_readyz(tmp_path, server.url)
    assert server.requests == 1  # the transport did not try again behind our back


def test_twin_get_text_of_a_server_that_is_not_there_is_unreachable_not_no_answer(tmp_path: Any) -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:  # a port taken from the kernel and given back
        port = sock.getsockname()[1]
    with pytest.raises(errors.UnreachableError) as caught:  # nothing listens there: refused
        _get_readyz(tmp_path, f"http://127.0.0.1:{port}")
    assert type(caught.value) is errors.UnreachableError


def test_get_text_of_a_readyz_that_fails_names_its_failed_checks(tmp_path: Any) -> None:
    server = _HttpServer(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: "
                     + str(len(READYZ_DOWN)).encode() + b"\r\n\r\n" + READYZ_DOWN)
    with pytest.raises(errors.ClusterError) as caught:
        _get_readyz(tmp_path, server.url)
    assert caught.value.status == 500
    assert caught.value.detail == "Internal Server Error: check(s) failed: etcd, etcd-readiness"


def test_twin_get_text_of_a_readyz_that_is_ok_reads_ok(tmp_path: Any) -> None:
    server = _HttpServer(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
    assert _get_readyz(tmp_path, server.url) == "ok"


def test_an_unusable_kubeconfig_is_named(tmp_path: Any) -> None:
    target = platformconfig.Target(name="here", kubeconfig=str(tmp_path / "missing"))
    with pytest.raises(errors.ProvisionError, match="cannot load the kubeconfig for host cluster 'here'"):
        cluster.connect(target)


def test_a_connection_from_kubeconfig_text_is_named_as_given(tmp_path: Any) -> None:
    """A virtual cluster's own kubeconfig (text from its Secret) makes a connection like a target's does."""
    _kubeconfig(tmp_path)
    text = (tmp_path / "kubeconfig").read_text()
    with cluster.connect_kubeconfig(text, name="the virtual cluster of vteam") as conn:
        assert conn.server == SERVER and conn.target.name == "the virtual cluster of vteam"
    with pytest.raises(errors.ProvisionError, match="cannot load the kubeconfig of the virtual cluster of vteam"):
        cluster.connect_kubeconfig("- not a kubeconfig\n", name="the virtual cluster of vteam")


# ---------------------------------------------------------------------------------------------------
# impersonation
# ---------------------------------------------------------------------------------------------------


class _Pool:
    def __init__(self) -> None:
        self.headers: Any = None

    def request(self, method: str, url: str, *args: Any, headers: Any = None, **kwargs: Any) -> str:
        self.headers = headers
        return "response"

    def clear(self) -> None:
        pass


def test_impersonation_sends_one_header_per_group() -> None:
    pool = _Pool()
    wrapped = impersonation.Impersonating(pool, "system:serviceaccount:payments-ci:deployer",
                                          ("system:serviceaccounts", "system:authenticated"))
    assert wrapped.request("GET", "https://x/api", headers={"Accept": "application/json"}) == "response"
    assert pool.headers["Impersonate-User"] == "system:serviceaccount:payments-ci:deployer"
    assert pool.headers.getlist("Impersonate-Group") == ["system:serviceaccounts", "system:authenticated"]
    assert pool.headers["Accept"] == "application/json"
    wrapped.clear()  # everything else reaches the real pool


def test_connect_as_someone_wraps_the_pool(tmp_path: Any) -> None:
    with cluster.connect(_kubeconfig(tmp_path), user="alice@example.com", groups=("devs",)) as conn:
        assert isinstance(conn.api.rest_client.pool_manager, impersonation.Impersonating)
    with cluster.connect(_kubeconfig(tmp_path)) as conn:
        assert isinstance(conn.api.rest_client.pool_manager, urllib3.PoolManager)


def test_a_sibling_connection_keeps_the_identity_on_a_pool_of_its_own(tmp_path: Any) -> None:
    with cluster.connect(_kubeconfig(tmp_path), user="alice@example.com", groups=("devs",)) as conn, \
            conn.sibling() as other:
        assert other.api is not conn.api and other.server == conn.server
        pool = other.api.rest_client.pool_manager
        assert isinstance(pool, impersonation.Impersonating)
        assert pool is not conn.api.rest_client.pool_manager
        assert (pool._user, pool._groups) == ("alice@example.com", ("devs",))


# ---------------------------------------------------------------------------------------------------
# the pure rules: drift, addresses, claims, kubeconfigs, the recorded verify
# ---------------------------------------------------------------------------------------------------


def _drift(desired: Any, live: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    comparison.field_drift("", desired, live, out)
    return out


def test_drift_ignores_what_the_server_added_and_empty_vs_absent() -> None:
    desired = {"metadata": {"name": "q", "labels": {"a": "1"}}, "spec": {"hard": {"pods": "4"}, "scopes": []}}
    live = {"metadata": {"name": "q", "labels": {"a": "1", "extra": "x"}, "uid": "u"}, "spec": {"hard": {"pods": "4"}},
            "status": {"used": {}}}
    assert _drift(desired, live) == []


def test_drift_names_each_changed_field_by_path() -> None:
    desired = {"spec": {"hard": {"pods": "4"}, "ports": [{"port": 80}, {"port": 81}], "replicas": 2}}
    live = {"spec": {"hard": {"pods": "40"}, "ports": [{"port": 80}, {"port": 8081}], "replicas": 2.0}}
    assert _drift(desired, live) == [
        {"field": "spec.hard.pods", "desired": "4", "live": "40"},
        {"field": "spec.ports[1].port", "desired": 81, "live": 8081},
    ]


def test_drift_of_shapes_lists_and_engine_keys() -> None:
    assert _drift({"a": [1, 2]}, {"a": [1]}) == [{"field": "a", "desired": [1, 2], "live": [1]}]
    assert _drift({"a": {"b": 1}}, {"a": "x"}) == [{"field": "a", "desired": {"b": 1}, "live": "x"}]
    assert _drift({"a": 1, "__engine": "x"}, {"a": 1}) == []
    assert _drift({"a": None}, {"a": 5}) == []  # not set by us: not ours to compare


def test_object_drift_rows_and_deleted_objects() -> None:
    inputs = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"},
              "data": {"k": "v"}, "__inputs": {"x": 1}}
    assert comparison.object_drift(inputs, None) == [
        {"object": "ConfigMap n/c", "field": "(object)", "desired": "present", "live": "deleted"}]
    assert comparison.object_drift(inputs, {"data": {"k": "w"}, "metadata": {"name": "c", "namespace": "n"},
                                            "apiVersion": "v1", "kind": "ConfigMap"}) == [
        {"object": "ConfigMap n/c", "field": "data.k", "desired": "v", "live": "w"}]
    assert comparison.object_name({"kind": "Namespace", "metadata": {"name": "a"}}) == "Namespace a"
    assert not comparison.is_object({"chart": "vcluster"})


def test_api_addresses_from_the_service_and_its_slices() -> None:
    service = {"spec": {"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                        "ports": [{"name": "https", "port": 443}, {"name": "other", "port": 80}]}}
    slices = [{"ports": [{"name": "https", "port": 6443}], "endpoints": [{"addresses": ["192.168.1.5"]}]},
              {"ports": [{"name": "metrics", "port": 9000}], "endpoints": [{"addresses": ["192.168.1.6"]}]}]
    assert comparison.api_addresses(service, slices) == [{"ip": "10.96.0.1", "port": 443},
                                                         {"ip": "192.168.1.5", "port": 6443}]
    assert comparison.api_addresses({"spec": {"clusterIP": "None", "ports": [{"name": "https", "port": 1}]}}, []) == []


def test_address_drift_only_when_recorded_and_moved() -> None:
    live = [{"ip": "10.96.0.1", "port": 443}]
    assert comparison.address_drift(None, live) == []
    assert comparison.address_drift([{"ip": "10.96.0.1", "port": "443"}], live) == []
    (row,) = comparison.address_drift([{"ip": "10.96.0.9", "port": 443}], live)
    assert row["field"] == "addresses" and row["live"] == live


def _ns(name: str, *, tenant: str = "", managed: bool = True, stack: str = "") -> dict[str, Any]:
    labels = {naming.TENANT_LABEL: tenant} if tenant else {}
    if managed:
        labels[naming.MANAGED_BY_KEY] = naming.MANAGED_BY_VALUE
    return {"metadata": {"name": name, "labels": labels, "annotations": {naming.STACK_ANNOTATION: stack}}}


def test_claims_allow_our_own_and_refuse_others_naming_them() -> None:
    found = {
        "p-app": claims.claim_of(_ns("p-app", tenant="p", stack="t/c.p")),
        "p-hand": claims.claim_of(_ns("p-hand", tenant="renamed", managed=False, stack="t/c.p")),  # ours, relabelled
        "p-web": claims.claim_of(_ns("p-web", tenant="p")),  # ours by label, no stack yet
    }
    assert claims.problems(found, "p", "t/c.p") == []
    others = {
        "a": claims.claim_of(_ns("a", managed=False)),
        "b": claims.claim_of(_ns("b", tenant="other", stack="t/c.other")),
        "c": claims.claim_of(_ns("c", tenant="p", stack="t/elsewhere.p")),
    }
    assert claims.problems(others, "p", "t/c.p") == [
        "namespace a already exists and is not managed by vcluster-mgr",
        "namespace b belongs to tenant 'other'",
        "namespace c of tenant 'p' is owned by stack 't/elsewhere.p'",
    ]


def test_owner_kubeconfig_has_a_context_per_namespace() -> None:
    text = kubeconfigs.owner_kubeconfig(cluster="local", server=SERVER, ca=b"CA", user="alice",
                                        certificate_b64="Q0VSVA==", key_pem=b"KEY", namespaces=["p-app", "p-ci"])
    doc = yaml.safe_load(text)
    assert [c["name"] for c in doc["contexts"]] == ["p-app@vcm-local", "p-ci@vcm-local"]
    assert doc["current-context"] == "p-app@vcm-local"
    assert doc["clusters"][0]["cluster"] == {"server": SERVER, "certificate-authority-data": "Q0E="}
    assert doc["users"][0]["user"]["client-key-data"] == "S0VZ"


def test_a_virtual_clusters_kubeconfig_is_pointed_at_its_exposure() -> None:
    given = yaml.safe_dump({"clusters": [{"name": "a", "cluster": {"server": "https://localhost:8443"}},
                                         {"name": "b"}]})
    doc = yaml.safe_load(kubeconfigs.pointed_at(given.encode(), "https://vc.example.com"))
    assert [c["cluster"]["server"] for c in doc["clusters"]] == ["https://vc.example.com"] * 2


def test_the_verify_result_round_trips_through_the_annotation() -> None:
    patch = verify_annotation.patch({"passed": True, "pass": 24})
    ns = {"metadata": {"name": "p-app", "annotations": patch["metadata"]["annotations"]}}
    later = {"metadata": {"name": "p-ci", "annotations": {naming.LAST_VERIFY_ANNOTATION: '{"passed": false}'}}}
    assert verify_annotation.last_verify([later, ns]) == {"passed": True, "pass": 24}  # the first namespace's
    broken = {"metadata": {"name": "a", "annotations": {naming.LAST_VERIFY_ANNOTATION: "{"}}}
    assert verify_annotation.last_verify([broken])["passed"] is None  # type: ignore[index]
    assert verify_annotation.last_verify([{"metadata": {"name": "x"}}]) is None
