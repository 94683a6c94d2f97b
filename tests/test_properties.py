"""Property tests: hostile specs thrown at load + render (vcluster_mgr.spec, vcluster_mgr.render).

Every input either renders objects confined to its tenant (only the tenant's own namespaces, only
the blueprint's kinds, all labelled, the YAML stream reading back to the same objects) or fails with
a SpecError. Any other exception, from pydantic, PyYAML, jinja2 or the code between them, fails the
test. Inputs: the issue's example with fields replaced by hostile strings and numbers (unicode, line
breaks, quotes, ``{{ }}``, ``---``, huge numbers), keys deleted and added, YAML anchors, aliases
and tags on every scalar, and raw text spliced into the file.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcluster_mgr import errors, naming, render, spec

PAYMENTS_TEXT = (Path(__file__).resolve().parent.parent / "examples" / "tenants" / "payments.yaml").read_text()
PAYMENTS = yaml.safe_load(PAYMENTS_TEXT)
TENANT_KINDS = {"Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "RoleBinding", "ConfigMap", "FlowSchema"}
LENIENT = spec.parse_policy({"isolationLevels": ["strict", "namespace", "none"], "allowNoTtl": True})

FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HOSTILE_STRINGS = [
    "",
    " ",
    "{{ 7 * 7 }}",
    "{% for x in y %}",
    "{#",
    "---",
    "...",
    "\n",
    "a\nb",
    "\r\n",
    "'",
    '"',
    "\\",
    "\\n",
    "a: b",
    "- x",
    "# c",
    "&anchor",
    "*alias",
    "!!python/object/apply:os.system ['id']",
    "%YAML 1.1",
    "@",
    "`",
    "|",
    ">",
    "\t",
    "\x00",
    "\x85",
    "\u2028",
    "\ufeff",
    "\ud7ff",
    "😀",
    "ünïcødé",
    "\u202e",
    "null",
    "~",
    "true",
    "no",
    "1e3",
    "-1",
    "0x10",
    ".inf",
    "2h",
    "8",
    "16Gi",
    "kube-system",
    "default",
    "vcluster-mgr-system",
    "payments-ci",
    "a" * 64,
    "b" * 300,
    "x" * 5000,
    "[/bold]",
    "${HOME}",
    "$(id)",
    "<script>",
    "app.kubernetes.io/managed-by",
    "pod-security.kubernetes.io/enforce",
    "10.0.0.0/8",
    "0.0.0.0/0",
    "::/0",
]
HOSTILE_NUMBERS = [
    0,
    -1,
    1,
    2**31,
    2**63,
    2**64,
    10**30,
    -(10**30),
    10**400,
    1.5,
    -0.0,
    1e308,
    float("inf"),
    float("-inf"),
    float("nan"),
    True,
    False,
]

hostile_text = st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(max_size=40))
hostile_scalar = st.one_of(
    hostile_text,
    st.sampled_from(HOSTILE_NUMBERS),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
)
hostile_value = st.one_of(
    hostile_scalar,
    st.lists(hostile_scalar, max_size=3),
    st.dictionaries(hostile_text, hostile_scalar, max_size=3),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into the example: containers and leaves, list items by index."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


PATHS = _paths(PAYMENTS)


def _child(node: Any, key: Any) -> Any:
    if isinstance(node, dict) and key in node:
        return node[key]
    if isinstance(node, list) and isinstance(key, int) and key < len(node):
        return node[key]
    return None


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    node = data
    for key in path[:-1]:
        node = _child(node, key)
    return node


def _set(data: Any, path: tuple[Any, ...], value: Any) -> None:
    parent = _parent(data, path)
    if isinstance(parent, dict) or (isinstance(parent, list) and isinstance(path[-1], int) and path[-1] < len(parent)):
        parent[path[-1]] = value


def _delete(data: Any, path: tuple[Any, ...]) -> None:
    parent = _parent(data, path)
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    elif isinstance(parent, list) and isinstance(path[-1], int) and path[-1] < len(parent):
        del parent[path[-1]]


def assert_confined(tenant: spec.Tenant, policy: spec.Policy | None = None) -> None:
    """The property: a valid tenant renders only its own, labelled objects, as YAML that reads back."""
    objects = render.render_tenant(tenant, policy=policy)
    own = set(tenant.namespace_names())
    assert len(own) == len(tenant.spec.namespaces)
    for obj in objects:
        assert obj["kind"] in TENANT_KINDS
        metadata = obj["metadata"]
        if obj["kind"] == "Namespace":
            assert metadata["name"] in own and "namespace" not in metadata
        elif obj["kind"] == "FlowSchema":  # cluster-scoped, one per tenant (API fairness): its own accounts only
            assert metadata["name"] == f"vcm-tenant-{tenant.name}" and "namespace" not in metadata
            accounts = [s["serviceAccount"] for r in obj["spec"]["rules"] for s in r["subjects"]
                        if s["kind"] == "ServiceAccount"]
            assert all(a["namespace"] in own for a in accounts)
        else:
            assert metadata["namespace"] in own
        assert metadata["labels"][naming.MANAGED_BY_KEY] == naming.MANAGED_BY_VALUE
        assert metadata["labels"][naming.TENANT_LABEL] == tenant.name
    assert sorted(o["metadata"]["name"] for o in objects if o["kind"] == "Namespace") == sorted(own)
    assert list(yaml.safe_load_all(render.dump_manifests(objects))) == objects
    subjects = sorted(
        b["subjects"][0]["name"]
        for b in objects
        if b["kind"] == "RoleBinding" and b["metadata"]["namespace"] == tenant.namespace_names()[0]
    )
    assert subjects == sorted(o.name for o in tenant.spec.owners), "owner names reach the bindings unchanged"


def load_and_render(load: Any, policy: spec.Policy | None = None) -> None:
    try:
        tenant = load()
    except errors.SpecError as exc:
        assert exc.errors and all(isinstance(e, errors.FieldError) and e.message for e in exc.errors)
        assert str(exc)
        return
    assert_confined(tenant, policy)


OWNER_NAMES = [("spec", "owners", 0, "name"), ("spec", "owners", 1, "name")]
free_form = st.tuples(st.sampled_from(OWNER_NAMES), st.one_of(hostile_text, st.text(min_size=1)))
"""Changes that keep the spec valid more often than not: owner names are free-form text."""


@FAST
@given(
    changes=st.lists(st.one_of(free_form, free_form, st.tuples(st.sampled_from(PATHS), hostile_value)), max_size=4),
    deletions=st.lists(st.sampled_from(PATHS), max_size=2),
    additions=st.lists(
        st.tuples(
            st.sampled_from([p for p in PATHS if isinstance(p[-1], str)] + [("x",)]), hostile_text, hostile_value
        ),
        max_size=2,
    ),
    lenient=st.booleans(),
)
def test_hostile_values_missing_and_extra_keys(
    changes: list[tuple[tuple[Any, ...], Any]],
    deletions: list[tuple[Any, ...]],
    additions: list[tuple[tuple[Any, ...], str, Any]],
    lenient: bool,
) -> None:
    data = copy.deepcopy(PAYMENTS)
    for path, value in changes:
        _set(data, path, value)
    for path in deletions:
        _delete(data, path)
    for path, key, value in additions:
        parent = _parent(data, (*path, key))
        if isinstance(parent, dict):
            parent[key] = value
    policy = LENIENT if lenient else None
    load_and_render(lambda: spec.parse_spec(data, source="hostile.yaml", policy=policy), policy)


# ---------------------------------------------------------------------------------------------
# YAML text with anchors, aliases and tags on every scalar
# ---------------------------------------------------------------------------------------------

TAGS = [
    "!!str ",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!null ",
    "!!binary ",
    "!!timestamp ",
    "!!set ",
    "!!omap ",
    "!!python/object:os.system ",
    "!!python/name:os.system ",
    "!custom ",
    "!<tag:example.com,2000:x> ",
]


@st.composite
def decorated_yaml(draw: st.DrawFn) -> str:
    """The example (with some hostile values) as flow YAML, scalars tagged, anchored or aliased.

    A drawn rate decides how many scalars are decorated; aliases mostly point at an anchor of the
    same value and ``!!str`` mostly sits on strings, so a fair share of documents stays valid.
    """
    data = copy.deepcopy(PAYMENTS)
    for path, value in draw(st.lists(st.tuples(st.sampled_from(OWNER_NAMES + PATHS), hostile_scalar), max_size=2)):
        _set(data, path, value)
    rate = draw(st.sampled_from([0, 5, 20, 60]))
    anchors: dict[str, str] = {}

    def emit(node: Any) -> str:
        if isinstance(node, dict):
            return "{" + ", ".join(f"{emit(k)}: {emit(v)}" for k, v in node.items()) + "}"
        if isinstance(node, list):
            return "[" + ", ".join(emit(v) for v in node) + "]"
        try:
            text = json.dumps(node)
        except (TypeError, ValueError):
            text = json.dumps(str(node))
        text = {"NaN": ".nan", "Infinity": ".inf", "-Infinity": "-.inf"}.get(text, text)
        if draw(st.integers(min_value=0, max_value=99)) >= rate:
            return text
        choice = draw(st.sampled_from(["anchor", "anchor", "alias", "alias", "str", "tag", "unknown-alias"]))
        if choice == "anchor" or (choice == "alias" and text not in anchors):
            anchors[text] = f"a{len(anchors)}"
            return f"&{anchors[text]} {text}"
        if choice == "alias":
            return f"*{anchors[text]}"
        if choice == "str" and isinstance(node, str):
            return f"!!str {text}"
        if choice == "unknown-alias":
            return "*nowhere"
        return draw(st.sampled_from(TAGS)) + text

    return emit(data) + "\n"


@FAST
@given(text=decorated_yaml())
def test_anchors_aliases_and_tags_everywhere(text: str) -> None:
    load_and_render(lambda: spec.parse_spec_text(text, source="tags.yaml"))


@FAST
@given(
    position=st.integers(min_value=0, max_value=len(PAYMENTS_TEXT)),
    insert=st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(max_size=20)),
    cut=st.integers(min_value=0, max_value=20),
)
def test_raw_text_spliced_into_the_file(position: int, insert: str, cut: int) -> None:
    text = PAYMENTS_TEXT[:position] + insert + PAYMENTS_TEXT[position + cut :]
    load_and_render(lambda: spec.parse_spec_text(text, source="spliced.yaml"))


dns_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,12}[a-z0-9])?", fullmatch=True)
label_key = st.from_regex(
    r"([a-z0-9]([-a-z0-9.]{0,20}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,40}[A-Za-z0-9])?", fullmatch=True
)
label_value = st.from_regex(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,40}[A-Za-z0-9])?)?", fullmatch=True)


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid shapes nine times in ten (so render is reached), hostile text otherwise."""
    return st.integers(min_value=0, max_value=9).flatmap(lambda n: valid if n else hostile_text)


printable = st.text(st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"]), min_size=1)


@FAST
@given(
    name=mostly(dns_label),
    namespaces=st.lists(mostly(dns_label), min_size=1, max_size=4),
    owner=mostly(printable),
    labels=st.dictionaries(mostly(label_key), mostly(label_value), max_size=3),
    node_selector=st.dictionaries(mostly(label_key), mostly(label_value), max_size=3),
)
def test_hostile_names_labels_and_selectors(
    name: str, namespaces: list[str], owner: str, labels: dict[str, str], node_selector: dict[str, str]
) -> None:
    data = copy.deepcopy(PAYMENTS)
    data["metadata"] = {"name": name, "labels": labels}
    data["spec"]["namespaces"] = namespaces
    data["spec"]["owners"] = [{"kind": "Group", "name": owner, "role": "view"}]
    data["spec"]["placement"] = {"nodeSelector": node_selector}
    load_and_render(lambda: spec.parse_spec(data, source="names.yaml"))
