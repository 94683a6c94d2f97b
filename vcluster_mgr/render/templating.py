"""Rendering jinja2 templates into checked objects: the template environment, the checks every rendered
object must pass, and the YAML output.

The built-in blueprint lives at the top of the repository, ``templates/``, where a platform admin looks for
it; the package reaches it through ``vcluster_mgr/templates``, a link to ``../templates`` that the wheel
build follows, so the wheel carries the files themselves as package data. A source checkout, an editable
install and the wheel all find them at that one path. An admin's ``templates_dir`` (``--templates``,
``templatesDir``; a copy of ``templates/`` is a good start) is searched first, so any file can be overridden
by one of the same path, and is read as every user's file is (``reading``: regular files, bounded). Values enter
templates only through ``| tojson`` with ``StrictUndefined``; the rendered text is parsed back and every
object is checked (kind, apiVersion, labels, namespaces). A failed check is an ``errors.RenderError``.

Nothing here talks to a cluster; the only I/O is reading templates.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2
import yaml

from vcluster_mgr import errors, kube, reading, spec

BUILTIN_TEMPLATES = (Path(__file__).resolve().parent.parent / "templates").resolve()
"""The built-in blueprint: the repository's ``templates/`` in a checkout or an editable install (through the
``vcluster_mgr/templates`` link), the package data ``vcluster_mgr/templates/`` in an installed wheel."""


class _AdminLoader(jinja2.BaseLoader):
    """An admin's templates folder, each file read through ``reading`` (a FIFO or a device there is refused,
    not waited on or read without end); a file it lacks falls through to the built-in one."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        path = self.folder.joinpath(*jinja2.loaders.split_template_path(template))
        if not path.exists():
            raise jinja2.TemplateNotFound(template)
        return reading.read_text(path), str(path), lambda: False


# ---------------------------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------------------------


def _json_dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` for ``| tojson``: keeps non-ASCII text as is, escapes what YAML would misread.

    Characters in ``kube.UNPRINTABLE`` become ``\\uXXXX`` escapes, which YAML and JSON both read
    back as the same character (``ensure_ascii`` would split astral characters into surrogate pairs,
    which PyYAML does not join again).
    """
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    return kube.UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@functools.lru_cache(maxsize=16)
def _environment(templates_dir: str | None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        loaders.append(_AdminLoader(templates_dir))
    loaders.append(jinja2.FileSystemLoader(str(BUILTIN_TEMPLATES)))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - YAML, not HTML: values go in only through | tojson
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.policies["json.dumps_function"] = _json_dumps
    env.policies["json.dumps_kwargs"] = {"sort_keys": True}
    return env


def template_text(name: str, context: dict[str, Any], templates_dir: str | Path | None) -> str:
    folder = None
    if templates_dir is not None:
        if not Path(templates_dir).is_dir():
            raise errors.RenderError(f"templates folder {templates_dir} does not exist")
        folder = str(Path(templates_dir).resolve())
    try:
        return _environment(folder).get_template(name).render(**context)
    except jinja2.TemplateError as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
        raise errors.RenderError(f"template {name}{where}: {exc.message or exc}") from exc


#: libyaml's safe loader where PyYAML was built with it (same rules as ``yaml.SafeLoader``, about ten times
#: faster): every render parses its output back, for every tenant of every command
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_documents(name: str, text: str) -> list[Any]:
    try:
        return [doc for doc in yaml.load_all(text, Loader=_SAFE_LOADER) if doc is not None]
    except yaml.YAMLError as exc:
        raise errors.RenderError(f"template {name} rendered invalid YAML: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Checks on rendered objects
# ---------------------------------------------------------------------------------------------


def _check(
    name: str,
    obj: Any,
    *,
    kinds: dict[str, str],
    namespaces: list[str],
    cluster_names: dict[str, list[str]],
    labels: dict[str, str],
) -> tuple[str, str, str]:
    """Check one rendered object; return its (kind, namespace, name) or raise ``errors.RenderError``.

    ``cluster_names`` maps each cluster-scoped kind to the names it may have (a missing kind: any
    name); every other kind is namespaced and must sit in one of ``namespaces``.
    """

    def fail(problem: str) -> errors.RenderError:
        return errors.RenderError(f"template {name} rendered an object the blueprint does not allow: {problem}")

    if not isinstance(obj, dict):
        raise fail(f"expected a mapping, got {spec.show(obj)}")
    kind, api_version, metadata = obj.get("kind"), obj.get("apiVersion"), obj.get("metadata")
    if not isinstance(kind, str) or kind not in kinds:
        raise fail(f"kind {spec.show(kind)} is not one of {', '.join(kinds)}")
    if api_version != kinds[kind]:
        raise fail(f"{kind} has apiVersion {spec.show(api_version)}, expected {kinds[kind]}")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        raise fail(f"{kind} has no metadata.name")
    object_name, namespace = metadata["name"], metadata.get("namespace")
    try:
        kube.check_dns_subdomain(object_name)
    except ValueError as exc:
        raise fail(f"{kind} name {spec.show(object_name)} {exc}") from None
    if kind in cluster_names:
        if namespace is not None:
            raise fail(f"{kind} {object_name} is cluster-scoped but has metadata.namespace")
        allowed = cluster_names[kind]
        if allowed and object_name not in allowed:
            raise fail(f"{kind} {object_name} is not one of {', '.join(allowed)}")
        namespace = ""
    elif namespace not in namespaces:
        raise fail(f"{kind} {object_name} is in namespace {spec.show(namespace)}, not one of {', '.join(namespaces)}")
    found = metadata.get("labels")
    missing = [k for k, v in labels.items() if not isinstance(found, dict) or found.get(k) != v]
    if missing:
        raise fail(f"{kind} {object_name} lacks the labels {', '.join(f'{k}={labels[k]}' for k in missing)}")
    return kind, namespace, object_name


def render_checked(
    templates: Iterable[str],
    context: dict[str, Any],
    templates_dir: str | Path | None,
    *,
    kinds: dict[str, str],
    namespaces: list[str],
    cluster_names: dict[str, list[str]],
    labels: dict[str, str],
) -> list[dict[str, Any]]:
    """Render ``templates``, check every object, and return them sorted by kind order, namespace, name."""
    order = {kind: i for i, kind in enumerate(kinds)}
    keyed: dict[tuple[str, str, str], dict[str, Any]] = {}
    for name in templates:
        for obj in parse_documents(name, template_text(name, context, templates_dir)):
            key = _check(name, obj, kinds=kinds, namespaces=namespaces, cluster_names=cluster_names, labels=labels)
            if key in keyed:
                raise errors.RenderError(
                    f"template {name} rendered {key[0]} {key[2]} in {key[1] or 'the cluster'} twice"
                )
            keyed[key] = obj
    return [keyed[key] for key in sorted(keyed, key=lambda k: (order[k[0]], k[1], k[2]))]


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def dump_manifests(objects: Iterable[dict[str, Any]]) -> str:
    """Objects as one YAML stream (each document starting with ``---``), keys in template order."""
    return str(yaml.safe_dump_all(list(objects), sort_keys=False, allow_unicode=True, explicit_start=True, width=120))
