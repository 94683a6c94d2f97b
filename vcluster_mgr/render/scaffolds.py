"""Starter files vcm writes for a user: the commented tenant spec of ``vcm init`` and the CI pipelines of
``vcm ci init``. Each is checked (the spec parses, the pipeline is valid YAML) before it is returned.
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
) -> str:
    """A CI pipeline (GitHub Actions workflow or .gitlab-ci.yml) that tests against an ephemeral tenant.

    It installs vcluster-mgr, writes the host kubeconfig from the CI secret ``VCM_HOST_KUBECONFIG`` to a
    mode-600 file (never printing it), creates a tenant from ``spec_path`` named ``name_prefix`` + random
    that expires after ``ttl``, runs the tests (``make test``, a placeholder to edit) with KUBECONFIG
    pointing at the tenant, and deletes the tenant even when the job fails; ``ttl`` is the backstop if
    even that fails. Raises ``UsageError`` for an unknown kind or a bad ttl, prefix or path.
    """
    if kind not in CI_TEMPLATES:
        raise errors.UsageError(f"unknown CI system {kind!r}; choose one of: {', '.join(CI_TEMPLATES)}")
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
