"""The platform admin's config: host clusters (``Target``), policy and blueprint folder (``Blueprint``).

Plain data below the Pulumi layer: the offline commands read it without importing the Pulumi SDK or the
kubernetes client, and ``program``, ``workspace`` and ``cluster`` take these types as they are.

The file is checked as strictly as a tenant spec, because a mistake in it picks the cluster a tenant is
applied to: a key misspelt at any depth (``kubconfig:`` inside a cluster entry would otherwise fall back
to ``KUBECONFIG`` and reach whatever cluster that names) is an error, as are two clusters of one name and a
``defaultCluster`` that names none; every problem is reported at once with its dotted path, before
anything runs. Its JSON Schema is generated from the model (``vcm schema platform``,
``schema/platform.schema.json``).

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

from pydantic import Field, ValidationError

from vcluster_mgr import errors, reading, spec

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


class ClusterEntry(spec.StrictModel):
    """One host cluster of the platform."""

    name: spec.DnsLabel = Field(
        description="Name of the host cluster, a DNS-1123 label: what a tenant's spec.placement.cluster and "
        "--cluster name, and the first part of its stacks' names (<cluster>.<tenant>). Unique in the file."
    )
    kubeconfig: str | None = Field(
        default=None,
        min_length=1,
        description="Kubeconfig file reaching the cluster, relative to the platform config; ~ is expanded. "
        "Left out: the usual resolution (--kubeconfig, KUBECONFIG, ~/.kube/config).",
    )
    context: spec.PrintableName | None = Field(
        default=None, description="Context of the kubeconfig to use; left out: its current-context."
    )


class PlatformFile(spec.StrictModel):
    """The platform config file: host clusters, the default one, the admin policy and templates folder."""

    clusters: list[ClusterEntry] = Field(
        default_factory=list,
        description="The host clusters. Left out or empty: one cluster, default, reached by the usual "
        "kubeconfig resolution.",
    )
    default_cluster: spec.DnsLabel | None = Field(
        default=None,
        description="Where a tenant without spec.placement.cluster goes; one of the clusters' names. "
        "Left out: the first cluster.",
    )
    policy: str | None = Field(
        default=None, min_length=1, description="Admin policy file (kind: Policy), relative to the platform config."
    )
    templates_dir: str | None = Field(
        default=None,
        min_length=1,
        description="Folder of the admin's own blueprint templates, relative to the platform config: a file "
        "there replaces the built-in one of the same path (a copy of templates/ is a good start).",
    )


SCHEMA_ID = "https://vcluster-mgr.dev/schema/v1alpha1/platform.schema.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the platform config file (committed as schema/platform.schema.json)."""
    return spec.model_json_schema(PlatformFile, SCHEMA_ID)


def schema_text() -> str:
    """The schema as the exact text committed under schema/ (2-space JSON, trailing newline)."""
    return spec.model_schema_text(PlatformFile, SCHEMA_ID)


def _cross_errors(raw: dict[str, Any], source: str) -> list[errors.FieldError]:
    """What the model cannot see field by field: a name used twice, a default cluster that is none of them.

    Runs on the raw document, so these are reported beside the model's own errors, not after them.
    """
    out = []
    entries = raw.get("clusters")
    names: dict[str, int] = {}
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue
        if name in names:
            message = f"{spec.show(name)} is also the name of clusters[{names[name]}]; each cluster needs its own"
            out.append(errors.FieldError(f"clusters[{i}].name", message, source))
        names.setdefault(name, i)
    default = raw.get("defaultCluster")
    if isinstance(default, str) and names and default not in names:
        message = f"{spec.show(default)} is not one of the clusters: {', '.join(names)}"
        out.append(errors.FieldError("defaultCluster", message, source))
    return out


def _read_file(path: Path) -> PlatformFile:
    """The platform config file, checked; ``SpecError`` with every problem in it."""
    source = str(path)
    raw = spec.load_document(reading.read_text(path), source, "platform config")
    problems = _cross_errors(raw, source)
    try:
        model = PlatformFile.model_validate(raw)
    except ValidationError as exc:
        raise errors.SpecError(spec.field_errors(exc, PlatformFile, source) + problems) from None
    if problems:
        raise errors.SpecError(problems)
    return model


def _kubeconfig_errors(paths: list[tuple[str, str]], source: str | None) -> list[errors.FieldError]:
    """Each named kubeconfig that exists but is not a readable regular file of a sane size.

    The kubernetes client and the engine read these files themselves, without a bound: /dev/zero there
    would be read until the kernel kills the process. ``paths`` holds (dotted path or option, file).
    """
    out = []
    for where, file in paths:
        try:
            reading.check_if_present(file)
        except errors.SpecError as exc:
            out += [errors.FieldError(where, f"{file} {e.message}", source) for e in exc.errors]
    return out


def load(
    path: Path | None = None,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    policy_path: Path | None = None,
    templates_dir: Path | None = None,
) -> PlatformConfig:
    """Read the admin config (or build the single-cluster default); command-line flags win. ``VCM_CONFIG`` is
    read by the CLI's ``--config`` option and arrives here as ``path``.

    Raises ``SpecError`` with every problem of the file (and of the kubeconfigs, policy and templates
    folder it names) at once.
    """
    data = PlatformFile()
    base = Path.cwd()
    source: str | None = None
    if path is not None:
        data = _read_file(path)
        base = path.parent
        source = str(path)
    problems: list[errors.FieldError] = []
    clusters: dict[str, Target] = {}
    named: list[tuple[str, str]] = []
    for i, entry in enumerate(data.clusters):
        kc = str((base / Path(entry.kubeconfig).expanduser()).resolve()) if entry.kubeconfig else None
        clusters[entry.name] = Target(entry.name, kc, entry.context)
        if kc:
            named.append((f"clusters[{i}].kubeconfig", kc))
    flag_kubeconfig = kubeconfig
    if not clusters:
        kubeconfig = kubeconfig or os.environ.get("KUBECONFIG")
        clusters[DEFAULT_CLUSTER] = Target(DEFAULT_CLUSTER, kubeconfig, context)
    elif kubeconfig or context:
        # flags override the default cluster's access, as kubectl's do
        d = data.default_cluster or next(iter(clusters))
        clusters[d] = Target(d, kubeconfig or clusters[d].kubeconfig, context or clusters[d].context)
    problems += _kubeconfig_errors(named, source)
    if flag_kubeconfig:
        problems += _kubeconfig_errors([("--kubeconfig", flag_kubeconfig)], None)
    if any(t.kubeconfig is None for t in clusters.values()) or (not data.clusters and not flag_kubeconfig):
        # the default resolution: every file KUBECONFIG lists, else ~/.kube/config
        listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
        defaults = [("KUBECONFIG", p) for p in listed] or [("~/.kube/config", str(Path.home() / ".kube" / "config"))]
        problems += _kubeconfig_errors(defaults, None)
    default = data.default_cluster or next(iter(clusters))
    tdir = templates_dir or (base / data.templates_dir if data.templates_dir else None)
    if data.templates_dir and not templates_dir and not (base / data.templates_dir).is_dir():
        problems.append(errors.FieldError("templatesDir", f"{base / data.templates_dir} is not a folder", source))
    pol_file = policy_path or (base / data.policy if data.policy else None)
    policy = spec.DEFAULT_POLICY
    if pol_file is not None:
        try:
            policy = spec.load_policy(pol_file)
        except errors.SpecError as exc:
            problems += exc.errors
    if problems:
        raise errors.SpecError(problems)
    return PlatformConfig(clusters, default, Blueprint(policy, str(tdir) if tdir else None))
