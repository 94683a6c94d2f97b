"""Reading spec documents: YAML with positions in errors and a guard against alias bombs, files and
folders of specs (or stdin), namespace clashes across tenants, and the admin policy file. The bytes come
through ``reading`` (regular files only, bounded in size).

``parse_spec`` / ``load_spec`` / ``load_specs`` run both passes and raise one ``errors.SpecError``
holding every problem.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from vcluster_mgr import errors, reading
from vcluster_mgr.spec import messages, policy_model, rules, tenant_model

MAX_EXPANDED_NODES = 100_000
"""Most YAML nodes a document may expand to once anchors/aliases are followed (guards against alias bombs)."""


# ---------------------------------------------------------------------------------------------
# Reading documents
# ---------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (no custom tags) whose value errors carry the position of the bad node.

    PyYAML's safe constructors raise plain ``ValueError``/``KeyError`` for values that do not fit
    an explicit tag (``!!int abc``, ``!!bool null``); here they become ``ConstructorError``s with a mark.
    """

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError):
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            value = messages.show(node.value) if isinstance(node, yaml.ScalarNode) else "the value"
            problem = f"{value} does not fit the tag {tag}"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


def _node_count(doc: Any) -> int:
    """How many nodes ``doc`` has once every alias is expanded; raises ``ValueError`` on a cycle."""
    memo: dict[int, int] = {}
    active: set[int] = set()

    def count(node: Any) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in memo:
            return memo[key]
        if key in active:
            raise ValueError("an alias refers to a node that contains it (a recursive structure)")
        active.add(key)
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        total = 1 + sum(count(c) for c in children)
        active.discard(key)
        memo[key] = total
        return total

    return count(doc)


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}"


def load_document(text: str, source: str | None, what: str) -> Any:
    """The one YAML document in ``text``; SpecError for syntax errors, tags, several documents, bombs."""

    def fail(path: str, message: str) -> errors.SpecError:
        return errors.SpecError([errors.FieldError(path, message, source)])

    try:
        docs = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        context = exc.context or ""
        if context and exc.context_mark and exc.problem_mark:
            context += f" (started at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
        problem = "; ".join(p for p in (context, exc.problem) if p)
        raise fail(where, f"invalid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:
        raise fail(_position(text, exc.position), f"invalid YAML: {exc.reason} (character {exc.character!r})") from None
    except yaml.YAMLError as exc:
        raise fail("(document)", f"invalid YAML: {exc}") from None
    except RecursionError:
        raise fail("(document)", "invalid YAML: nested too deeply") from None
    if not docs:
        raise fail("(document)", f"is empty; expected one {what} document")
    if len(docs) > 1:
        message = f"holds {len(docs)} YAML documents; a file holds exactly one {what} (put each in its own file)"
        raise fail("(document)", message)
    try:
        size = _node_count(docs[0])
    except (ValueError, RecursionError) as exc:
        message = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise fail("(document)", f"invalid YAML: {message}") from None
    if size > MAX_EXPANDED_NODES:
        message = f"expands to {size} YAML nodes once aliases are followed; at most {MAX_EXPANDED_NODES} are allowed"
        raise fail("(document)", message)
    if not isinstance(docs[0], dict):
        keys = " (apiVersion, kind, ...)" if what in ("Tenant", "Policy") else ""
        raise fail("(document)", f"expected a {what} mapping{keys}, got {messages.show(docs[0])}")
    return docs[0]


def read_text(path: str | Path) -> str:
    """A spec-like file's text (``-``: stdin), through ``reading``: a regular file, bounded in size, UTF-8;
    ``SpecError`` naming the file otherwise."""
    return reading.read_text(path)


def read_document(path: str | Path, what: str) -> Any:
    """The one YAML document of a file, parsed but not checked; ``SpecError`` for anything unreadable."""
    path = Path(path)
    return load_document(read_text(path), str(path), what)


def parse_spec(
    data: Any, *, source: str | None = None, policy: policy_model.Policy | None = None
) -> tenant_model.Tenant:
    """Check one Tenant document (already parsed YAML) against the model and ``policy``.

    Returns the tenant with every value the spec left out filled from the policy; raises
    ``SpecError`` with every problem found (both passes), each naming ``source`` as its file.
    """
    policy = policy or policy_model.DEFAULT_POLICY

    def located(problems: list[tuple[str, str]]) -> list[errors.FieldError]:
        return [errors.FieldError(path, message, source) for path, message in problems]

    try:
        tenant = tenant_model.Tenant.model_validate(data)
    except ValidationError as exc:
        failed = [tuple(p for p in item["loc"] if p != "[key]") for item in exc.errors(include_url=False)]
        parts = rules.parts_of_raw(data, failed)
        raise errors.SpecError(
            messages.field_errors(exc, tenant_model.Tenant, source) + located(rules.semantic_errors(parts, policy))
        ) from None
    except RecursionError:
        raise errors.SpecError([errors.FieldError("(document)", "is nested too deeply", source)]) from None
    problems = located(rules.semantic_errors(rules.parts_of(tenant), policy))
    if problems:
        raise errors.SpecError(problems)
    tenant = rules.resolve(tenant, policy=policy)
    tenant._source = source
    return tenant


def parse_spec_text(
    text: str, *, source: str | None = None, policy: policy_model.Policy | None = None
) -> tenant_model.Tenant:
    """``parse_spec`` for YAML text: one document, loaded with ``yaml.safe_load`` (no custom tags)."""
    return parse_spec(load_document(text, source, "Tenant"), source=source, policy=policy)


def load_spec(path: str | Path, *, policy: policy_model.Policy | None = None) -> tenant_model.Tenant:
    """Read and check one tenant file (``-``: stdin); raises ``SpecError`` with every problem in it."""
    stdin = str(path) == reading.STDIN
    tenant = parse_spec_text(read_text(path), source=reading.STDIN_NAME if stdin else str(path), policy=policy)
    chart = tenant.spec.control_plane.chart.path
    if tenant.spec.control_plane.enabled and chart is not None:
        _check_local_chart(Path.cwd() if stdin else Path(path).resolve().parent, chart, tenant.source)
    return tenant


def _check_local_chart(base: Path, chart: str, source: str | None) -> None:
    """A local chart (``controlPlane.chart.path``, relative to the spec's folder) is read by Helm in the
    engine, without a bound: one that exists must be a folder or a regular archive of a sane size (a FIFO
    there would hang the apply). One that does not exist is left to the apply (a spec may be validated on
    another machine than the one applying it)."""
    where = base / chart
    if where.is_dir():
        return
    try:
        reading.check_if_present(where, limit=reading.MAX_CHART_BYTES)
    except errors.SpecError as exc:
        field = "spec.controlPlane.chart.path"
        raise errors.SpecError([errors.FieldError(field, f"{where} {e.message}", source) for e in exc.errors]) from None


def spec_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files named by ``paths``: files as given, folders as their ``*.yaml``/``*.yml`` (not recursive),
    ``-`` as stdin (once). Whether a file is a regular one is ``reading``'s to say, when it is read."""
    found: list[Path] = []
    problems: list[errors.FieldError] = []
    for raw in paths:
        path = Path(raw)
        if str(raw) == reading.STDIN:
            found.append(path)
        elif path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            if not inside:
                problems.append(errors.FieldError("(file)", "is a folder without *.yaml or *.yml files", str(path)))
            found += inside
        elif os.path.lexists(path):
            found.append(path)
        else:
            problems.append(errors.FieldError("(file)", "does not exist", str(path)))
    if problems:
        raise errors.SpecError(problems)
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path if str(path) == reading.STDIN else path.resolve(), path)
    return list(unique.values())


def load_specs(paths: Iterable[str | Path], *, policy: policy_model.Policy | None = None) -> list[tenant_model.Tenant]:
    """Read and check every tenant file in ``paths`` (files or folders), then check them against each other.

    Collects the problems of ALL files (and namespace clashes between tenants) before raising one
    ``SpecError``; returns the tenants in file order otherwise.
    """
    tenants: list[tenant_model.Tenant] = []
    problems: list[errors.FieldError] = []
    for path in spec_files(paths):
        try:
            tenants.append(load_spec(path, policy=policy))
        except errors.SpecError as exc:
            problems += exc.errors
    problems += namespace_clashes(tenants)
    problems += spoofed_peers(tenants, policy or policy_model.DEFAULT_POLICY)
    if problems:
        raise errors.SpecError(problems)
    return tenants


def namespace_clashes(tenants: Sequence[tenant_model.Tenant]) -> list[errors.FieldError]:
    """Problems where two tenants share a name or claim the same namespace (``a``+``b-c`` vs ``a-b``+``c``)."""
    out = []
    names: dict[str, tenant_model.Tenant] = {}
    claimed: dict[str, tenant_model.Tenant] = {}
    for tenant in tenants:
        first = names.setdefault(tenant.name, tenant)
        if first is not tenant:
            message = f"tenant {messages.show(tenant.name)} is also defined in {first.source or 'another spec'}"
            out.append(errors.FieldError("metadata.name", message, tenant.source))
        for i, namespace in enumerate(tenant.namespace_names()):
            holder = claimed.setdefault(namespace, tenant)
            if holder is not tenant:
                message = (
                    f"namespace {messages.show(namespace)} is also claimed by tenant {messages.show(holder.name)} "
                    f"({holder.source or 'another spec'})"
                )
                out.append(errors.FieldError(f"spec.namespaces[{i}]", message, tenant.source))
    return out


def spoofed_peers(tenants: Sequence[tenant_model.Tenant], policy: policy_model.Policy) -> list[errors.FieldError]:
    """Problems where a tenant lets in (``network.allowIngressFrom``) a namespace another tenant owns.

    A tenant ``ingress`` with a namespace ``nginx`` owns ``ingress-nginx``; a spec naming that namespace as
    its ingress controller would let that tenant in. Allowed only for the policy's ``trustedPeerTenants``.
    (The NetworkPolicy refuses such a peer anyway; this says so before anything is applied.)
    """
    owner = {ns: t for t in tenants for ns in t.namespace_names()}
    trusted = set(policy.trusted_peer_tenants)
    out = []
    for tenant in tenants:
        for i, peer in enumerate(tenant.spec.network.allow_ingress_from):
            holder = owner.get(peer.namespace)
            if holder is None or holder is tenant or holder.name in trusted:
                continue
            message = (
                f"namespace {messages.show(peer.namespace)} belongs to tenant {messages.show(holder.name)} "
                f"({holder.source or 'another spec'}); another tenant's namespace is never a peer unless the "
                "policy lists that tenant in trustedPeerTenants"
            )
            out.append(errors.FieldError(f"spec.network.allowIngressFrom[{i}].namespace", message, tenant.source))
    return out


def check_namespace_clashes(tenants: Sequence[tenant_model.Tenant]) -> None:
    """Raise ``SpecError`` if ``namespace_clashes`` finds anything."""
    problems = namespace_clashes(tenants)
    if problems:
        raise errors.SpecError(problems)


def parse_policy(data: Any, *, source: str | None = None) -> policy_model.Policy:
    """Check one Policy document (already parsed YAML); raises ``SpecError`` with every problem."""
    try:
        policy = policy_model.Policy.model_validate(data)
    except ValidationError as exc:
        raise errors.SpecError(messages.field_errors(exc, policy_model.Policy, source)) from None
    problems = rules.policy_errors(policy)
    if problems:
        raise errors.SpecError([errors.FieldError(path, message, source) for path, message in problems])
    return policy


def load_policy(path: str | Path) -> policy_model.Policy:
    """Read and check an admin policy file; raises ``SpecError`` with every problem in it."""
    return parse_policy(load_document(read_text(path), str(path), "Policy"), source=str(path))
