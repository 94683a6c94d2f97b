"""The platform admin's config: host clusters (``Target``), policy and blueprint folder (``Blueprint``).

Plain data below the Pulumi layer: the offline commands read it without importing the Pulumi SDK or the
kubernetes client, and ``program``, ``workspace`` and ``cluster`` take these types as they are.

A YAML file (``--config FILE`` or ``VCM_CONFIG``)::

    clusters:                       # one or more host clusters
      - name: default
        kubeconfig: ~/.kube/config  # optional: default resolution (KUBECONFIG, ~/.kube/config)
        context: prod-eu            # optional: the kubeconfig's current context
      - name: second
        kubeconfig: /etc/vcm/second.kubeconfig
    defaultCluster: default         # where a tenant without spec.placement.cluster goes
    policy: policy.yaml             # optional, relative to this file
    templatesDir: my-templates      # optional, relative to this file

Without a file there is one host cluster, ``default``, reached by the usual kubeconfig resolution
(``--kubeconfig``, ``--context``, ``KUBECONFIG``).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from vcluster_mgr import errors, spec

DEFAULT_CLUSTER = "default"
"""The one host cluster's name when no platform config names any."""


@dataclasses.dataclass(frozen=True)
class Target:
    """One host cluster as the engine reaches it: a kubeconfig path and an optional context.

    ``in_state`` says where the provider learns them. False (``vcm``): from the engine's environment at
    each run (``workspace.engine_env``), so the provider configuration a stack records holds neither, and a
    kubeconfig that moved, broke or changed context on one run cannot break the next. True (the GitOps
    program, when its stack config names a kubeconfig or context): as provider inputs, recorded in the
    stack, as plain Pulumi programs do.
    """

    name: str
    kubeconfig: str | None = None
    context: str | None = None
    in_state: bool = False


@dataclasses.dataclass(frozen=True)
class Blueprint:
    """The admin's side: policy and (optionally) their own templates folder."""

    policy: spec.Policy = dataclasses.field(default_factory=lambda: spec.DEFAULT_POLICY)
    templates_dir: str | None = None


@dataclasses.dataclass(frozen=True)
class PlatformConfig:
    """The host clusters by name, the one a tenant without ``spec.placement.cluster`` goes to, the blueprint."""

    clusters: dict[str, Target]
    default_cluster: str
    blueprint: Blueprint

    def target_for(self, tenant: spec.Tenant) -> Target:
        name = tenant.spec.placement.cluster or self.default_cluster
        if name not in self.clusters:
            raise errors.SpecError(
                [
                    errors.FieldError(
                        "spec.placement.cluster",
                        f"unknown host cluster {name!r}; the platform config names: "
                        + ", ".join(sorted(self.clusters)),
                        tenant.source,
                    )
                ]
            )
        return self.clusters[name]

    def target(self, name: str | None) -> Target:
        key = name or self.default_cluster
        if key not in self.clusters:
            raise errors.UsageError(f"unknown host cluster {key!r}; known: {', '.join(sorted(self.clusters))}")
        return self.clusters[key]


def _fail(source: str, path: str, message: str) -> errors.SpecError:
    return errors.SpecError([errors.FieldError(path, message, source)])


def load(
    path: Path | None = None,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    policy_path: Path | None = None,
    templates_dir: Path | None = None,
) -> PlatformConfig:
    """Read the admin config (or build the single-cluster default); command-line flags win."""
    path = path or (Path(os.environ["VCM_CONFIG"]) if os.environ.get("VCM_CONFIG") else None)
    data: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise _fail(source, "(file)", f"is not UTF-8 text ({exc.reason})") from exc
        except OSError as exc:
            raise errors.UsageError(f"cannot read platform config {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise _fail(source, "(document)", f"not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise _fail(source, "(document)", "must be a mapping with clusters, defaultCluster, policy, templatesDir")
        unknown = set(loaded) - {"clusters", "defaultCluster", "policy", "templatesDir"}
        if unknown:
            raise _fail(
                source, sorted(unknown)[0], "unknown key; valid: clusters, defaultCluster, policy, templatesDir"
            )
        data = loaded
        base = path.parent
    clusters: dict[str, Target] = {}
    for i, entry in enumerate(data.get("clusters") or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise _fail(str(path), f"clusters[{i}]", "each cluster needs a name (and optionally kubeconfig, context)")
        kc = entry.get("kubeconfig")
        clusters[entry["name"]] = Target(
            entry["name"], str((base / Path(kc).expanduser()).resolve()) if kc else None, entry.get("context")
        )
    if not clusters:
        clusters[DEFAULT_CLUSTER] = Target(DEFAULT_CLUSTER, kubeconfig or os.environ.get("KUBECONFIG"), context)
    elif kubeconfig or context:
        # flags override the default cluster's access, as kubectl's do
        d = data.get("defaultCluster") or next(iter(clusters))
        clusters[d] = Target(d, kubeconfig or clusters[d].kubeconfig, context or clusters[d].context)
    default = data.get("defaultCluster") or next(iter(clusters))
    if default not in clusters:
        raise _fail(str(path), "defaultCluster", f"{default!r} is not one of the clusters: {', '.join(clusters)}")
    pol_file = policy_path or (base / data["policy"] if data.get("policy") else None)
    policy = spec.load_policy(pol_file) if pol_file else spec.DEFAULT_POLICY
    tdir = templates_dir or (base / data["templatesDir"] if data.get("templatesDir") else None)
    return PlatformConfig(clusters, default, Blueprint(policy, str(tdir) if tdir else None))
