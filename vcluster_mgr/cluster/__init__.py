"""The only place that talks to a Kubernetes API server with the kubernetes client.

One connection per host cluster per command (``connect``, a context manager, passed down explicitly), and one
funnel (``Connection.call``) that every request goes through: the one default timeout, retries of 429 and 503
(bounded, honouring Retry-After, saying what they wait for) and the client library's exceptions turned into
``errors.ClusterError`` (``NotFoundError``, ``ForbiddenError``, ``ConflictError``, ``TooManyRequestsError``,
``UnreachableError``), each naming the server. Nothing outside this package imports the client library (an
import-linter contract), so it stays replaceable.

``connect_kubeconfig(text, name=...)`` does the same from a kubeconfig given as text (a virtual cluster's own).

The parts: ``connection`` and ``funnel`` (with the pure ``translation`` and ``retrying``), ``impersonation``;
what is read and written: ``namespaces`` (identity, the wait for Active), ``ownership``, ``drift``,
``host_api``, ``live_objects`` (the fast path's one LIST per kind, as fingerprint digests), ``certificates``
(owner kubeconfigs), ``control_plane_access``, ``quotas``, ``verify_records``,
``pod_exec`` (a command in a pod: the one reader of an exec's stream, for the traffic probes and the
snapshots), ``control_plane_snapshots`` (a virtual cluster's
snapshot taken and restored by its syncer);
the pure rules they use: ``claims``, ``comparison``, ``kubeconfigs``, ``verify_annotation``, ``restore_pods``.
"""

from __future__ import annotations

from vcluster_mgr.cluster.certificates import owner_kubeconfig
from vcluster_mgr.cluster.claims import Claim
from vcluster_mgr.cluster.connection import Connection, connect, connect_kubeconfig
from vcluster_mgr.cluster.control_plane_access import kubeconfig as control_plane_kubeconfig
from vcluster_mgr.cluster.control_plane_access import server as control_plane_server
from vcluster_mgr.cluster.control_plane_snapshots import restore as restore_snapshot
from vcluster_mgr.cluster.control_plane_snapshots import take as take_snapshot
from vcluster_mgr.cluster.drift import drift, get_object
from vcluster_mgr.cluster.funnel import REQUEST_TIMEOUT
from vcluster_mgr.cluster.host_api import addresses as host_api_addresses
from vcluster_mgr.cluster.host_api import drift as host_api_drift
from vcluster_mgr.cluster.live_objects import list_labelled, live_digests
from vcluster_mgr.cluster.namespaces import cluster_uid, read_namespace
from vcluster_mgr.cluster.namespaces import wait_active as wait_namespaces_active
from vcluster_mgr.cluster.ownership import check_ownership, namespace_owners
from vcluster_mgr.cluster.quotas import tenant_quotas
from vcluster_mgr.cluster.retrying import RetryPolicy
from vcluster_mgr.cluster.verify_annotation import last_verify
from vcluster_mgr.cluster.verify_records import record_verify

__all__ = [
    "REQUEST_TIMEOUT",
    "Claim",
    "Connection",
    "RetryPolicy",
    "check_ownership",
    "cluster_uid",
    "connect",
    "connect_kubeconfig",
    "control_plane_kubeconfig",
    "control_plane_server",
    "drift",
    "get_object",
    "host_api_addresses",
    "host_api_drift",
    "last_verify",
    "list_labelled",
    "live_digests",
    "namespace_owners",
    "owner_kubeconfig",
    "read_namespace",
    "record_verify",
    "restore_snapshot",
    "take_snapshot",
    "tenant_quotas",
    "wait_namespaces_active",
]
