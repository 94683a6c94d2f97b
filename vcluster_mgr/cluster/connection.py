"""One connection to one host cluster for one command: its client, its API groups, its funnel; always closed.

``connect(target)`` loads the kubeconfig (no request is sent) and returns a ``Connection``, a context
manager: ``with cluster.connect(target) as conn: ...``. Everything in this package that talks to a server
takes the connection explicitly, so a command that does several things on one cluster (``vcm status``
reads quotas, drift and the API server's addresses) opens one pool of connections, not one per function
or per object, and closes it when done.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import yaml
from kubernetes import client, config
from kubernetes.client import rest

from vcluster_mgr import errors, platformconfig
from vcluster_mgr.cluster import funnel, impersonation

T = TypeVar("T")


class Connection:
    """A host cluster's ``ApiClient`` with every request sent through ``funnel.call``.

    The API groups (``core``, ``apps``, ...) are made on first use: importing some of them costs the client
    library a second or more on two cores, and most commands need one or two.
    """

    def __init__(self, api: client.ApiClient, *, target: platformconfig.Target,
                 notify: Callable[[str], object] | None = None) -> None:
        self.api = api
        self.target = target
        self.notify = notify
        self.server = str(api.configuration.host)
        self._closed = False

    # -- the funnel --------------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` through the funnel (default timeout, retries, typed errors naming the server)."""
        return funnel.call(self.server, what, fn, *args, notify=self.notify, **kwargs)

    def read(self, what: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T | None:
        """As ``call``, but None when the object is not there (404)."""
        return funnel.not_found_is_none(lambda: self.call(what, fn, *args, **kwargs))

    def get_json(self, what: str, path: str, *, query: list[tuple[str, str]] | None = None,
                 headers: dict[str, str] | None = None, timeout: float | None = None) -> Any:
        """GET ``path`` as parsed JSON, through the generic client only: no API group module is imported,
        which keeps ``vcm apply``'s ownership reads cheap. Raises the typed errors (``NotFoundError`` on 404)."""

        def send(*, _request_timeout: float) -> bytes:
            request = self.api.param_serialize("GET", path, query_params=query or [], header_params=headers,
                                               auth_settings=["BearerToken"])
            response = self.api.call_api(*request, _request_timeout=_request_timeout)
            response.read()  # type: ignore[no-untyped-call]  # unannotated in the kubernetes client
            funnel.raise_for_status(response)
            return bytes(response.data or b"")

        kwargs = {"_request_timeout": timeout} if timeout is not None else {}
        data = self.call(what, send, **kwargs)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise errors.ClusterError(f"{what} on {self.server}: the answer is not JSON", server=self.server,
                                      status=200) from exc

    def get_text(self, what: str, path: str, *, timeout: float | None = None) -> str:
        """GET ``path`` as text (``/readyz`` answers ``ok``), once: the client's pool sends it without the
        transport's hidden retries (urllib3 would try a read that timed out three more times, so a health check
        of a server that hangs would take four timeouts). Raises the typed errors: an answer other than 2xx is a
        ``ClusterError`` with its status, a read that timed out a ``NoAnswerError``, no answer an
        ``UnreachableError``."""

        def send(*, _request_timeout: float) -> bytes:
            method, url, headers, _, _ = self.api.param_serialize("GET", path, auth_settings=["BearerToken"])
            raw = self.api.rest_client.pool_manager.request(method, url, headers=headers, retries=False,
                                                            timeout=_request_timeout, preload_content=True)
            response = rest.RESTResponse(raw)
            response.read()  # type: ignore[no-untyped-call]  # unannotated in the kubernetes client
            funnel.raise_for_status(response)
            return bytes(response.data or b"")

        kwargs = {"_request_timeout": timeout} if timeout is not None else {}
        return self.call(what, send, **kwargs).decode(errors="replace")

    def plain(self, obj: Any) -> Any:
        """A client model as plain JSON-shaped data (camelCase keys, as in manifests)."""
        return self.api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]  # unannotated

    # -- the API groups --------------------------------------------------------------------------------

    @functools.cached_property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @functools.cached_property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @functools.cached_property
    def rbac(self) -> client.RbacAuthorizationV1Api:
        return client.RbacAuthorizationV1Api(self.api)

    @functools.cached_property
    def networking(self) -> client.NetworkingV1Api:
        return client.NetworkingV1Api(self.api)

    @functools.cached_property
    def storage(self) -> client.StorageV1Api:
        return client.StorageV1Api(self.api)

    @functools.cached_property
    def scheduling(self) -> client.SchedulingV1Api:
        return client.SchedulingV1Api(self.api)

    @functools.cached_property
    def apiextensions(self) -> client.ApiextensionsV1Api:
        return client.ApiextensionsV1Api(self.api)

    @functools.cached_property
    def authorization(self) -> client.AuthorizationV1Api:
        return client.AuthorizationV1Api(self.api)

    @functools.cached_property
    def authentication(self) -> client.AuthenticationV1Api:
        return client.AuthenticationV1Api(self.api)

    @functools.cached_property
    def certificates(self) -> client.CertificatesV1Api:
        return client.CertificatesV1Api(self.api)

    @functools.cached_property
    def discovery(self) -> client.DiscoveryV1Api:
        return client.DiscoveryV1Api(self.api)

    @functools.cached_property
    def flowcontrol(self) -> client.FlowcontrolApiserverV1Api:
        return client.FlowcontrolApiserverV1Api(self.api)

    @functools.cached_property
    def version(self) -> client.VersionApi:
        return client.VersionApi(self.api)

    @functools.cached_property
    def dynamic(self) -> Any:
        """The dynamic client (any kind by apiVersion and kind), made once: it reads the server's discovery
        when made, which is why drift must not make one per object. Imported here: only drift needs it."""
        from kubernetes import dynamic

        return self.call("reading API discovery", lambda **_: dynamic.DynamicClient(self.api))  # type: ignore[no-untyped-call]

    # -- lifetime ------------------------------------------------------------------------------------

    def sibling(self) -> Connection:
        """A second connection with the same server and credentials (impersonation included), for another
        thread: the client's exec swaps its ApiClient's request function while it runs, so threads that exec
        must not share one. The caller closes it."""
        api = client.ApiClient(self.api.configuration)
        pool = self.api.rest_client.pool_manager
        if isinstance(pool, impersonation.Impersonating):
            api.rest_client.pool_manager = pool.again(api.rest_client.pool_manager)  # type: ignore[assignment]
        return Connection(api, target=self.target, notify=self.notify)

    def close(self) -> None:
        """Close the connection pool (and the client's thread pool, if one was started); idempotent."""
        if not self._closed:
            self._closed = True
            self.api.close()  # type: ignore[no-untyped-call]  # unannotated in the kubernetes client

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def connect(target: platformconfig.Target, *, user: str | None = None, groups: tuple[str, ...] = (),
            notify: Callable[[str], object] | None = None) -> Connection:
    """A connection to ``target`` with its kubeconfig and context; acting as ``user`` (and ``groups``) when
    given, which the kubeconfig's credentials must be allowed to impersonate. Sends no request.

    ``notify`` hears what the funnel waits for (a 429's Retry-After); by default a logged warning.
    """
    try:
        # new_client_from_config is unannotated in the kubernetes client
        api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=target.kubeconfig, context=target.context)
    except (config.ConfigException, OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise errors.ProvisionError(
            f"cannot load the kubeconfig for host cluster {target.name!r} "
            f"({target.kubeconfig or 'default resolution'}): {exc}") from exc
    if user is not None:
        # the REST client only ever calls request() on its pool, which Impersonating forwards
        api.rest_client.pool_manager = impersonation.Impersonating(  # type: ignore[assignment]
            api.rest_client.pool_manager, user, groups)
    return Connection(api, target=target, notify=notify)


def connect_kubeconfig(text: str, *, name: str, notify: Callable[[str], object] | None = None) -> Connection:
    """A connection from a kubeconfig given as text (a virtual cluster's own, read from its Secret), named
    ``name`` in messages. Sends no request; a kubeconfig that cannot be loaded is a ``ProvisionError``."""
    try:
        # new_client_from_config_dict is unannotated in the kubernetes client
        api: client.ApiClient = config.new_client_from_config_dict(  # type: ignore[no-untyped-call]
            yaml.safe_load(text))
    except (config.ConfigException, ValueError, TypeError, AttributeError, yaml.YAMLError) as exc:
        raise errors.ProvisionError(f"cannot load the kubeconfig of {name}: {exc}") from exc
    return Connection(api, target=platformconfig.Target(name=name), notify=notify)
