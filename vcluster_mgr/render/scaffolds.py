"""Starter files vcm writes for a user: the commented tenant spec of ``vcm init`` and the CI pipelines of
``vcm ci init`` (tests against an ephemeral tenant, or a folder applied by N sharded jobs). Each is checked
(the spec parses, the pipeline is valid YAML with its essential steps) before it is returned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from vcluster_mgr import errors, kube, naming, spec
from vcluster_mgr.render import templating

INIT_TEMPLATE = "init/tenant.yaml.j2"


def starter_spec(name: str, *, owner: str = "you@example.com", templates_dir: str | Path | None = None) -> str:
    """The commented starter spec ``vcm init NAME`` writes; checked to be a valid tenant before it is returned.

    Raises ``SpecError`` if ``name`` (or ``owner``) makes an invalid tenant.
    """
    try:
        kube.check_dns_label(name)
    except ValueError as exc:
        raise errors.SpecError([errors.FieldError("metadata.name", f"{spec.show(name)} {exc}")]) from None
    text = templating.template_text(INIT_TEMPLATE, {"name": name, "owner": owner}, templates_dir)
    spec.parse_spec_text(text)  # a reserved or too long name is a SpecError like any other
    return text


# ---------------------------------------------------------------------------------------------
# CI pipelines with an ephemeral tenant
# ---------------------------------------------------------------------------------------------

CI_TEMPLATES: dict[str, str] = {"github": "ci/github.yml.j2", "gitlab": "ci/gitlab.yml.j2"}
"""The pipeline template of each CI system ``vcm ci init`` knows."""

SHARDED_CI_TEMPLATES: dict[str, str] = {"github": "ci/github-shards.yml.j2", "gitlab": "ci/gitlab-shards.yml.j2"}
"""The pipelines of ``vcm ci init --apply-folder``: N jobs apply one folder, ``--shard I/N`` each."""

CI_MAX_SHARDS = 200
"""The most jobs a sharded pipeline runs: GitLab's upper bound for ``parallel:`` (GitHub allows 256)."""

HOST_KUBECONFIG_SECRET = "VCM_HOST_KUBECONFIG"  # noqa: S105 - the name of a CI secret, not a secret
"""Name of the CI secret (variable) holding the host cluster's kubeconfig."""


def _check_pipeline(kind: str, text: str) -> None:
    """The rendered pipeline parses as YAML and deletes the tenant even when the job fails."""
    name = CI_TEMPLATES[kind]
    documents = templating.parse_documents(name, text)
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise errors.RenderError(f"template {name} must render one YAML mapping")
    doc = documents[0]
    if kind == "github":
        jobs = doc.get("jobs")
        steps = [step for job in (jobs or {}).values() if isinstance(job, dict) for step in job.get("steps") or []]
        deletes = [s for s in steps if isinstance(s, dict) and "vcm ephemeral delete" in str(s.get("run", ""))]
        if not deletes or any(str(s.get("if", "")).strip() != "always()" for s in deletes):
            raise errors.RenderError(f"template {name} must delete the tenant in a step with if: always()")
    else:
        jobs = [job for key, job in doc.items() if isinstance(job, dict) and "script" in job]
        if not jobs or not all("vcm ephemeral delete" in str(job.get("after_script", "")) for job in jobs):
            raise errors.RenderError(f"template {name} must delete the tenant in every job's after_script")


def _check_sharded_pipeline(kind: str, text: str, shards: int) -> None:
    """The rendered pipeline parses as YAML, runs ``shards`` jobs and gives each its ``--shard``."""
    name = SHARDED_CI_TEMPLATES[kind]
    documents = templating.parse_documents(name, text)
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise errors.RenderError(f"template {name} must render one YAML mapping")
    doc = documents[0]
    if kind == "github":
        jobs = [job for job in (doc.get("jobs") or {}).values() if isinstance(job, dict)]
        sharded = [job for job in jobs
                   if ((job.get("strategy") or {}).get("matrix") or {}).get("shard") == list(range(1, shards + 1))
                   and any("--shard" in str(step.get("run", "")) for step in job.get("steps") or []
                           if isinstance(step, dict))]
    else:
        sharded = [job for job in doc.values() if isinstance(job, dict) and job.get("parallel") == shards
                   and '--shard "$CI_NODE_INDEX/$CI_NODE_TOTAL"' in str(job.get("script", ""))]
    if len(sharded) != 1:
        raise errors.RenderError(f"template {name} must have one job that runs {shards} times with --shard I/N")


def _check_ci_path(path: str) -> None:
    kube.check_printable(path)
    if "$" in path or "`" in path:
        raise ValueError("must not contain '$' or '`' (CI systems would expand them)")


def ci_pipeline(
    kind: Literal["github", "gitlab"],
    *,
    spec_path: str = "tenant.yaml",
    ttl: str = "2h",
    name_prefix: str = "ci-",
    templates_dir: str | Path | None = None,
    apply_folder: str | None = None,
    shards: int = 4,
    parallel: int = 2,
) -> str:
    """A CI pipeline (GitHub Actions workflow or .gitlab-ci.yml) that tests against an ephemeral tenant.

    It installs vcluster-mgr, writes the host kubeconfig from the CI secret ``VCM_HOST_KUBECONFIG`` to a
    mode-600 file (never printing it), creates a tenant from ``spec_path`` named ``name_prefix`` + random
    that expires after ``ttl``, runs the tests (``make test``, a placeholder to edit) with KUBECONFIG
    pointing at the tenant, and deletes the tenant even when the job fails; ``ttl`` is the backstop if
    even that fails. Raises ``UsageError`` for an unknown kind or a bad ttl, prefix or path.

    With ``apply_folder``, the pipeline instead applies every tenant spec of that folder with ``shards``
    jobs (a GitHub matrix, GitLab's ``parallel:``), job I running ``vcm apply FOLDER --shard I/N --parallel
    P``, all sharing one state backend (``VCM_BACKEND_URL``, its credentials and ``VCM_PASSPHRASE`` from the
    CI system's secrets); ``spec_path``, ``ttl`` and ``name_prefix`` do not apply to it.
    """
    if kind not in CI_TEMPLATES:
        raise errors.UsageError(f"unknown CI system {kind!r}; choose one of: {', '.join(CI_TEMPLATES)}")
    if apply_folder is not None:
        return _sharded_pipeline(kind, apply_folder, shards, parallel, templates_dir)
    checks: list[tuple[str, str, Any]] = [
        ("--ttl", ttl, kube.parse_duration),
        ("--name-prefix", name_prefix, naming.check_name_prefix),
        ("--spec", spec_path, _check_ci_path),
    ]
    for option, value, check in checks:
        try:
            if not value:
                raise ValueError("must not be empty")
            check(value)
        except ValueError as exc:
            raise errors.UsageError(f"{option} {spec.show(value)} {exc}") from None
    context = {
        "specPath": spec_path,
        "ttl": ttl,
        "namePrefix": name_prefix,
        "hostKubeconfigSecret": HOST_KUBECONFIG_SECRET,
    }
    text = templating.template_text(CI_TEMPLATES[kind], context, templates_dir)
    _check_pipeline(kind, text)
    return text


def _sharded_pipeline(kind: str, folder: str, shards: int, parallel: int, templates_dir: str | Path | None) -> str:
    try:
        if not folder:
            raise ValueError("must not be empty")
        _check_ci_path(folder)
    except ValueError as exc:
        raise errors.UsageError(f"--apply-folder {spec.show(folder)} {exc}") from None
    if not 2 <= shards <= CI_MAX_SHARDS:
        raise errors.UsageError(f"--shards {shards}: must be between 2 and {CI_MAX_SHARDS} (GitLab's limit of "
                                "parallel:; for one job, leave --shard out)")
    if parallel < 1:
        raise errors.UsageError(f"--parallel {parallel}: must be 1 or more")
    context = {
        "folder": folder,
        "shards": list(range(1, shards + 1)),
        "shardCount": shards,
        "parallel": parallel,
        "hostKubeconfigSecret": HOST_KUBECONFIG_SECRET,
    }
    text = templating.template_text(SHARDED_CI_TEMPLATES[kind], context, templates_dir)
    _check_sharded_pipeline(kind, text, shards)
    return text
