"""The Kubernetes side of a verify run: clients that impersonate the tenant's owner, and the session that
sends every request of the checks (dry-run for anything that would create) with one request timeout.

API errors become ``Attempt``s, never exceptions that escape a check; a run that cannot start raises
``errors.VerifyError``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from vcluster_mgr import errors, hostcluster, naming, platformconfig
from vcluster_mgr.verify import analysis, catalogue, judging, probe_objects, report

# ---------------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------------

ClientFactory = Callable[[report.Identity | None], client.ApiClient]
"""Makes an ApiClient: the admin's for ``None``, else one that impersonates the identity."""


class _Impersonating:
    """Wraps the REST client's urllib3 pool so every request carries the impersonation headers.

    The kubernetes client keeps headers in a plain dict, which cannot repeat ``Impersonate-Group``
    (the API server reads one group per header), so the headers are added here, as urllib3 allows.
    """

    def __init__(self, inner: Any, identity: report.Identity) -> None:
        self._inner = inner
        self._identity = identity

    def request(self, method: str, url: str, *args: Any, headers: Any = None, **kwargs: Any) -> Any:
        merged = urllib3.HTTPHeaderDict(headers or {})
        merged["Impersonate-User"] = self._identity.user
        for group in self._identity.groups:
            merged.add("Impersonate-Group", group)
        return self._inner.request(method, url, *args, headers=merged, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def impersonate(api: client.ApiClient, identity: report.Identity) -> client.ApiClient:
    """``api`` made to act as ``identity`` (its credentials must be allowed to impersonate)."""
    # the REST client only ever calls request() on its pool, which _Impersonating forwards
    api.rest_client.pool_manager = _Impersonating(api.rest_client.pool_manager, identity)  # type: ignore[assignment]
    return api


def client_factory(target: platformconfig.Target) -> ClientFactory:
    """ApiClients for a host cluster: the admin's kubeconfig, impersonating the identity when one is given."""

    def make(identity: report.Identity | None) -> client.ApiClient:
        api = hostcluster.api_client(target)
        return impersonate(api, identity) if identity is not None else api

    return make


# ---------------------------------------------------------------------------------------------
# Running the checks
# ---------------------------------------------------------------------------------------------


def plain(api: client.ApiClient, obj: Any) -> Any:
    """A client model as plain JSON-shaped data (camelCase keys, as in manifests)."""
    # the kubernetes client leaves sanitize_for_serialization unannotated
    return api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]


def close(api: client.ApiClient) -> None:
    """Close an ApiClient's connection pool (and its thread pool, if one was started)."""
    api.close()  # type: ignore[no-untyped-call]  # unannotated in the kubernetes client


def api_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "")
        return str(body.get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


class CheckFailedError(Exception):
    """An admin read a check needs failed; the check reports ``error`` with this message."""


class Session:
    """One tenant's verification: the admin's and the owner's clients, and what several checks share."""

    def __init__(
        self,
        tenant: report.TenantInfo,
        identity: report.Identity,
        others: Sequence[report.TenantInfo],
        admin: client.ApiClient,
        owner: client.ApiClient,
    ) -> None:
        self.tenant = tenant
        self.identity = identity
        self.others = others
        self.admin = admin
        self.owner = owner
        self.server = str(admin.configuration.host)
        self.core_a, self.core_o = client.CoreV1Api(admin), client.CoreV1Api(owner)
        self.net_a, self.net_o = client.NetworkingV1Api(admin), client.NetworkingV1Api(owner)
        self.rbac_a, self.rbac_o = client.RbacAuthorizationV1Api(admin), client.RbacAuthorizationV1Api(owner)
        self.authz_o = client.AuthorizationV1Api(owner)
        self.ns = list(tenant.namespaces)
        self._compliant: dict[str, judging.Attempt] = {}

    # -- plumbing ------------------------------------------------------------------------------

    def _unreachable(self, exc: Exception) -> errors.VerifyError:
        return errors.VerifyError(f"the API server {self.server} is not reachable: {exc}")

    def read(self, what: str, call: Callable[[], Any]) -> Any:
        """An admin read; ``CheckFailedError`` if the server refuses it."""
        try:
            return call()
        except ApiException as exc:
            raise CheckFailedError(f"reading {what} as admin: {exc.status} {api_message(exc)}") from exc
        except (HTTPError, OSError) as exc:
            raise self._unreachable(exc) from exc

    def items(self, what: str, call: Callable[[], Any]) -> list[dict[str, Any]]:
        """An admin list call, its items as plain dicts (camelCase keys, as in manifests)."""
        return [plain(self.admin, i) for i in self.read(what, call).items]

    def attempt(self, what: str, call: Callable[[], Any]) -> judging.Attempt:
        """A request as the owner."""
        try:
            call()
        except ApiException as exc:
            return judging.Attempt(what, False, exc.status, api_message(exc))
        except (HTTPError, OSError) as exc:
            raise self._unreachable(exc) from exc
        return judging.Attempt(what, True)

    def can(self, verb: str, group: str, resource: str, namespace: str | None = None, name: str | None = None) -> bool:
        """Whether the owner may ``verb`` the resource (SelfSubjectAccessReview as the owner)."""
        attrs = client.V1ResourceAttributes(verb=verb, group=group, resource=resource, namespace=namespace, name=name)
        body = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attrs))
        try:
            review = self.authz_o.create_self_subject_access_review(body, _request_timeout=catalogue.REQUEST_TIMEOUT)
        except ApiException as exc:
            raise CheckFailedError(
                f"SelfSubjectAccessReview as {self.identity.user}: {exc.status} {api_message(exc)}"
            ) from exc
        except (HTTPError, OSError) as exc:
            raise self._unreachable(exc) from exc
        return review.status is not None and bool(review.status.allowed)

    def denied_matrix(self, resources: Sequence[tuple[str, str]], verbs: Sequence[str]) -> list[judging.Verdict]:
        verdicts: list[judging.Verdict] = []
        for group, resource in resources:
            allowed = [v for v in verbs if self.can(v, group, resource)]
            if allowed:
                verdicts.append(
                    ("fail", f"may {', '.join(allowed)} {analysis.resource_text(group, resource)} (cluster scope)")
                )
            else:
                verdicts.append(("pass", f"may not {'/'.join(verbs)} {analysis.resource_text(group, resource)}"))
        return verdicts

    # -- what several checks share -------------------------------------------------------------

    @functools.cached_property
    def cluster_scoped(self) -> frozenset[tuple[str, str]]:
        """Cluster-scoped resources, from the server's aggregated discovery (admin); empty if it has none."""
        cfg = self.admin.configuration
        headers = {"Accept": analysis.AGGREGATED_DISCOVERY}
        token = cfg.auth_settings().get("BearerToken")
        if token and token.get("value"):
            headers[token["key"]] = token["value"]
        documents = []
        for path in ("/api", "/apis"):
            try:
                # RESTClientObject.request is unannotated in the kubernetes client
                response = self.admin.rest_client.request(  # type: ignore[no-untyped-call]
                    "GET", cfg.host + path, headers=headers, _request_timeout=catalogue.REQUEST_TIMEOUT
                )
                data = response.data if getattr(response, "data", None) is not None else response.read()
            except ApiException as exc:
                raise CheckFailedError(f"reading API discovery {path}: {exc.status} {api_message(exc)}") from exc
            except (HTTPError, OSError) as exc:
                raise self._unreachable(exc) from exc
            if response.status == 200:
                try:
                    documents.append(json.loads(data))
                except ValueError:
                    pass
        return analysis.cluster_scoped_resources(documents)

    @functools.cached_property
    def placement(self) -> dict[str, dict[str, str]]:
        out = {}
        for ns in self.ns:
            try:
                cm = plain(
                    self.admin,
                    self.core_a.read_namespaced_config_map(
                        naming.PLACEMENT_CONFIGMAP, ns, _request_timeout=catalogue.REQUEST_TIMEOUT
                    ),
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise CheckFailedError(
                        f"reading ConfigMap {ns}/{naming.PLACEMENT_CONFIGMAP}: {api_message(exc)}"
                    ) from exc
                cm = None
            except (HTTPError, OSError) as exc:
                raise self._unreachable(exc) from exc
            out[ns] = probe_objects.placement_selector(cm)
        return out

    @functools.cached_property
    def limit_ranges(self) -> dict[str, list[dict[str, Any]]]:
        return {
            ns: self.items(
                f"LimitRanges in {ns}",
                functools.partial(
                    self.core_a.list_namespaced_limit_range, ns, _request_timeout=catalogue.REQUEST_TIMEOUT
                ),
            )
            for ns in self.ns
        }

    @functools.cached_property
    def quotas(self) -> dict[str, list[dict[str, Any]]]:
        return {
            ns: self.items(
                f"ResourceQuotas in {ns}",
                functools.partial(
                    self.core_a.list_namespaced_resource_quota, ns, _request_timeout=catalogue.REQUEST_TIMEOUT
                ),
            )
            for ns in self.ns
        }

    def blueprint(self, what: str, call: Callable[..., Any], ns: str) -> list[dict[str, Any]]:
        """Objects of one kind in ``ns`` labelled as the blueprint's (managed-by vcluster-mgr)."""
        selector = f"{naming.MANAGED_BY_KEY}={naming.MANAGED_BY_VALUE}"
        return self.items(
            f"{what} in {ns}",
            functools.partial(call, ns, label_selector=selector, _request_timeout=catalogue.REQUEST_TIMEOUT),
        )

    def pod(self, ns: str, probe: probe_objects.PodProbe | None = None) -> dict[str, Any]:
        resources = probe_objects.container_resources(self.limit_ranges[ns])
        if probe is None:
            return probe_objects.compliant_pod(
                f"{catalogue.PROBE_PREFIX}-compliant", node_selector=self.placement[ns], resources=resources
            )
        return probe.pod(node_selector=self.placement[ns], resources=resources)

    def create_pod(self, ns: str, body: dict[str, Any], what: str) -> judging.Attempt:
        return self.attempt(
            what,
            lambda: self.core_o.create_namespaced_pod(
                ns,
                body,  # type: ignore[arg-type]  # the client serialises plain dicts as well as its models
                dry_run="All",
                _request_timeout=catalogue.REQUEST_TIMEOUT,
            ),
        )

    def compliant(self, ns: str) -> judging.Attempt:
        if ns not in self._compliant:
            self._compliant[ns] = self.create_pod(ns, self.pod(ns), f"compliant pod in {ns}")
        return self._compliant[ns]
