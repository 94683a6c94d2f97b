"""The Kubernetes side of a verify run: connections that impersonate the tenant's owner, and the session that
sends every request of the checks (dry-run for anything that would create) through ``cluster``'s funnel.

A refusal becomes an ``Attempt`` (or a check's ``error``), never an exception that escapes a check; a server
that does not answer raises ``errors.UnreachableError`` and a run that cannot start ``errors.VerifyError``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from vcluster_mgr import cluster, errors, naming, platformconfig
from vcluster_mgr.verify import analysis, catalogue, judging, probe_objects, report

# ---------------------------------------------------------------------------------------------
# Connections
# ---------------------------------------------------------------------------------------------

ClientFactory = Callable[[report.Identity | None], cluster.Connection]
"""Opens a connection: the admin's for ``None``, else one that impersonates the identity. The caller closes it."""


def client_factory(target: platformconfig.Target) -> ClientFactory:
    """Connections to a host cluster: the admin's kubeconfig, impersonating the identity when one is given."""

    def make(identity: report.Identity | None) -> cluster.Connection:
        if identity is None:
            return cluster.connect(target)
        return cluster.connect(target, user=identity.user, groups=tuple(identity.groups))

    return make


# ---------------------------------------------------------------------------------------------
# Running the checks
# ---------------------------------------------------------------------------------------------


class CheckFailedError(Exception):
    """An admin read a check needs failed; the check reports ``error`` with this message."""


class Session:
    """One tenant's verification: the admin's and the owner's connections, and what several checks share.

    Every request goes through the connections' funnel (``cluster.Connection.call``): a server that does not
    answer raises ``errors.UnreachableError`` out of the whole run, any other refusal is the check's business
    (``read`` makes it ``CheckFailedError``, ``attempt`` an ``Attempt`` that was refused).
    """

    def __init__(
        self,
        tenant: report.TenantInfo,
        identity: report.Identity,
        others: Sequence[report.TenantInfo],
        admin: cluster.Connection,
        owner: cluster.Connection,
    ) -> None:
        self.tenant = tenant
        self.identity = identity
        self.others = others
        self.admin = admin
        self.owner = owner
        self.server = admin.server
        self.core_a, self.core_o = admin.core, owner.core
        self.net_a, self.net_o = admin.networking, owner.networking
        self.rbac_a, self.rbac_o = admin.rbac, owner.rbac
        self.authz_o = owner.authorization
        self.ns = list(tenant.namespaces)
        self._compliant: dict[str, judging.Attempt] = {}

    # -- plumbing ------------------------------------------------------------------------------

    def read(self, what: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """An admin read; ``CheckFailedError`` if the server refuses it."""
        try:
            return self.admin.call(f"reading {what} as admin", fn, *args, **kwargs)
        except errors.UnreachableError:
            raise
        except errors.ClusterError as exc:
            raise CheckFailedError(f"reading {what} as admin: {exc.status} {exc.detail}") from exc

    def read_optional(self, what: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """As ``read``, but None when the object does not exist."""
        try:
            return self.read(what, fn, *args, **kwargs)
        except CheckFailedError as exc:
            if isinstance(exc.__cause__, errors.NotFoundError):
                return None
            raise

    def items(self, what: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """An admin list call, its items as plain dicts (camelCase keys, as in manifests)."""
        return [self.admin.plain(i) for i in self.read(what, fn, *args, **kwargs).items]

    def attempt(self, what: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> judging.Attempt:
        """A request as the owner: ``fn(*args, **kwargs)``, allowed or refused (with the status and message)."""
        try:
            self.owner.call(what, fn, *args, **kwargs)
        except errors.UnreachableError:
            raise
        except errors.ClusterError as exc:
            return judging.Attempt(what, False, exc.status, exc.detail)
        return judging.Attempt(what, True)

    def owner_request(self, what: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """A request as the owner whose answer a check needs (a review); ``CheckFailedError`` if refused."""
        try:
            return self.owner.call(what, fn, *args, **kwargs)
        except errors.UnreachableError:
            raise
        except errors.ClusterError as exc:
            raise CheckFailedError(f"{what}: {exc.status} {exc.detail}") from exc

    def can(self, verb: str, group: str, resource: str, namespace: str | None = None, name: str | None = None) -> bool:
        """Whether the owner may ``verb`` the resource (SelfSubjectAccessReview as the owner)."""
        attrs = {"verb": verb, "group": group, "resource": resource, "namespace": namespace, "name": name}
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {k: v for k, v in attrs.items() if v is not None}},
        }
        review = self.owner_request(
            f"SelfSubjectAccessReview as {self.identity.user}", self.authz_o.create_self_subject_access_review, body
        )
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
        documents = []
        for path in ("/api", "/apis"):
            try:
                documents.append(
                    self.admin.get_json(
                        f"reading API discovery {path}", path, headers={"Accept": analysis.AGGREGATED_DISCOVERY}
                    )
                )
            except errors.UnreachableError:
                raise
            except errors.ClusterError:
                pass  # no aggregated discovery there (an older server): nothing known to be cluster-scoped
        return analysis.cluster_scoped_resources(documents)

    @functools.cached_property
    def placement(self) -> dict[str, dict[str, str]]:
        out = {}
        for ns in self.ns:
            cm = self.read_optional(
                f"ConfigMap {ns}/{naming.PLACEMENT_CONFIGMAP}",
                self.core_a.read_namespaced_config_map,
                naming.PLACEMENT_CONFIGMAP,
                ns,
            )
            out[ns] = probe_objects.placement_selector(None if cm is None else self.admin.plain(cm))
        return out

    @functools.cached_property
    def limit_ranges(self) -> dict[str, list[dict[str, Any]]]:
        return {ns: self.items(f"LimitRanges in {ns}", self.core_a.list_namespaced_limit_range, ns) for ns in self.ns}

    @functools.cached_property
    def quotas(self) -> dict[str, list[dict[str, Any]]]:
        return {
            ns: self.items(f"ResourceQuotas in {ns}", self.core_a.list_namespaced_resource_quota, ns) for ns in self.ns
        }

    def blueprint(self, what: str, call: Callable[..., Any], ns: str) -> list[dict[str, Any]]:
        """Objects of one kind in ``ns`` labelled as the blueprint's (managed-by vcluster-mgr)."""
        selector = f"{naming.MANAGED_BY_KEY}={naming.MANAGED_BY_VALUE}"
        return self.items(f"{what} in {ns}", call, ns, label_selector=selector)

    def pod(self, ns: str, probe: probe_objects.PodProbe | None = None) -> dict[str, Any]:
        resources = probe_objects.container_resources(self.limit_ranges[ns])
        if probe is None:
            return probe_objects.compliant_pod(
                f"{catalogue.PROBE_PREFIX}-compliant", node_selector=self.placement[ns], resources=resources
            )
        return probe.pod(node_selector=self.placement[ns], resources=resources)

    def create_pod(self, ns: str, body: dict[str, Any], what: str) -> judging.Attempt:
        return self.attempt(what, self.core_o.create_namespaced_pod, ns, body, dry_run="All")

    def compliant(self, ns: str) -> judging.Attempt:
        if ns not in self._compliant:
            self._compliant[ns] = self.create_pod(ns, self.pod(ns), f"compliant pod in {ns}")
        return self._compliant[ns]
