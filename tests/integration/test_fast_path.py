"""The fast path never lies: each way a recorded fingerprint could wrongly say "no change", against the real local
API server and the real engine (the session's node-less host cluster).

Every case follows one drill (``_drill``):

1. the weakened build: with the fingerprint made to ignore the case (a switch patched in for the test: a
   content rule, the verdict, a part of the desired digest, the run-history check), the tenant is applied so
   that build records its fingerprint, the case is made to happen, and ``operations.prove`` says "no change":
   the weakened fingerprint lies, so the assertion the real one must pass FAILS there;
2. the real build: the tenant is applied again (its real fingerprint recorded) and the fast path holds while
   nothing changed; the case is made to happen again, ``prove`` names why the engine must run, the apply takes
   the engine path and repairs (or re-records), and afterwards the fast path holds again.

The cases: a label changed by someone else, an object deleted, a spec field changed by another field manager
(server-side apply, forced), a policy change, a blueprint template change, a tool version change, a stack whose
last update failed, a state edited by plain ``pulumi state delete``, a tenant applied from a second machine
(another state directory and backend), a control plane's Helm release rolled back by hand (such a tenant is
never proven: its release is a kind the fast path does not read back, so it always goes to the engine, which
upgrades the release back; the weakened twin leaves the release out of the fingerprint).

Also: the whole command on the fast path imports no engine SDK; the CLI names each tenant's path (``vcm
apply``, ``plan``, ``drift``, ``drift --all``, ``--full``), and a property test runs random histories of
(edit the spec, edit the cluster, apply) and checks, after each step, that the fast path never says "no
change" where a real ``pulumi preview --refresh`` finds one. The folder
stacks skip a batch whose fingerprint holds and run the others; the platform stack records its fingerprint.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import vcluster_mgr
from vcluster_mgr import (
    cli,
    cluster,
    fingerprint,
    localcluster,
    naming,
    operations,
    platformconfig,
    program,
    render,
    sharding,
    spec,
    toolchain,
    workspace,
)
from vcluster_mgr.workspace import backend, checkpoints

REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class Tenant:
    """One tenant of the test's own, with what applying it takes."""

    name: str
    settings: workspace.Settings
    target: platformconfig.Target
    job: operations.Job
    kubeconfig: Path

    def apply(self, *, full: bool = False, job: operations.Job | None = None,
              settings: workspace.Settings | None = None) -> workspace.Outcome:
        [outcome] = operations.run_jobs(settings or self.settings, [job or self.job], "apply", full=full)
        assert outcome.ok, outcome.error
        return outcome

    def prove(self, job: operations.Job | None = None) -> str | None:
        [why] = operations.prove(self.settings, operations.prepare([job or self.job], "apply"))
        return why

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        proc = subprocess.run([str(toolchain.bin_dir() / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
                              input=stdin, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        where = ("-n", namespace) if namespace else ()
        found: dict[str, Any] = json.loads(self.kubectl("get", kind, name, *where, "-o", "json"))
        return found


def _doc(name: str) -> dict[str, Any]:
    return {"apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
            "spec": {"owners": [{"kind": "User", "name": f"{name}@example.com", "role": "admin"}],
                     "namespaces": ["app"], "podSecurity": "restricted"}}


def _spec(folder: Path, doc: dict[str, Any], policy: spec.Policy | None = None) -> spec.Tenant:
    path = folder / f"{doc['metadata']['name']}.yaml"
    path.write_text(json.dumps(doc))
    return spec.load_specs([path], policy=policy)[0]


_COUNT = iter(range(1000))


@pytest.fixture()
def tenant(host_cluster: localcluster.Cluster, engine_settings: workspace.Settings, tmp_path: Path) -> Iterator[Tenant]:
    name = f"fp{os.getpid() % 10000}x{next(_COUNT)}"
    target = platformconfig.Target("default", str(host_cluster.kubeconfig))
    job = operations.Job(_spec(tmp_path, _doc(name)), target, platformconfig.Blueprint())
    found = Tenant(name, engine_settings, target, job, host_cluster.kubeconfig)
    yield found
    operations.delete_tenant(engine_settings, target, name)


def _changed(outcome: workspace.Outcome) -> int:
    return sum(v for k, v in outcome.changes.items() if k != "same")


def _drill(t: Tenant, weaken: Callable[[pytest.MonkeyPatch], None], happen: Callable[[], operations.Job | None],
           *, repaired: Callable[[], None] | None = None, changes: bool = True) -> workspace.Outcome:
    """The module docstring's drill: the weakened build lies, the real one sends the tenant to the engine,
    which repairs; returns the engine's outcome."""
    with pytest.MonkeyPatch.context() as m:
        weaken(m)
        t.apply(full=True)
        job = happen() or t.job
        assert t.prove(job) is None, "the weakened fingerprint should have said no change"
    t.apply(full=True)
    assert t.prove() is None, "nothing changed: the fingerprint must hold"
    job = happen() or t.job
    why = t.prove(job)
    assert why is not None, "the fingerprint held where the engine has work to do"
    outcome = t.apply(job=job)
    assert outcome.path == workspace.ENGINE_PATH and outcome.why == why
    if changes:
        assert _changed(outcome) > 0, outcome.changes
    if repaired is not None:
        repaired()
    assert t.prove(job) is None, "after the engine's run the fingerprint holds again"
    return outcome


def test_no_change_takes_the_fast_path_and_full_forces_the_engine(tenant: Tenant) -> None:
    first = tenant.apply()
    assert first.path == workspace.ENGINE_PATH and first.why == "a new tenant"
    again = tenant.apply()
    assert again.path == workspace.FINGERPRINT_PATH and again.changes == {"same": first.changes["create"]}
    forced = tenant.apply(full=True)
    assert forced.path == workspace.ENGINE_PATH and forced.why == operations.FULL
    assert set(forced.changes) == {"same"}


# Runs the CLI in this process, then prints which of the engine's SDKs it imported (stderr, last line).
_PROBE = """
import json, sys
from vcluster_mgr import cli
sys.argv = ["vcm", *sys.argv[1:]]
try:
    cli.main()
except SystemExit:
    pass
engine = {"pulumi", "pulumi_kubernetes", "grpc", "cryptography"}
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & engine)), file=sys.stderr)
"""


def test_the_fast_path_imports_no_engine_sdk(tenant: Tenant) -> None:
    """``vcm apply FILE`` of an unchanged tenant, the whole command, proves it without importing the Pulumi SDK,
    the Automation API (grpc) or cryptography (``lazy_modules``: they cost about 0.2 s of CPU a command);
    with ``--full`` the same command runs the engine, and the probe sees the SDK, so it can tell."""
    tenant.apply()
    s = tenant.settings
    env = {**os.environ, "KUBECONFIG": str(tenant.kubeconfig), "VCM_STATE_DIR": str(s.state_dir),
           "VCM_BACKEND_URL": s.backend_url}

    def vcm(*args: str) -> tuple[list[dict[str, Any]], list[str]]:
        proc = subprocess.run([sys.executable, "-c", _PROBE, "apply", str(tenant.job.tenant.source), "--yes",
                               "-o", "json", *args], env=env, capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return json.loads(proc.stdout), json.loads(proc.stderr.strip().splitlines()[-1])

    [fast], imported = vcm()
    assert fast["path"] == workspace.FINGERPRINT_PATH, fast
    assert imported == [], f"the fast path imported {imported}"
    [full], imported = vcm("--full")
    assert full["path"] == workspace.ENGINE_PATH, full
    assert "pulumi" in imported and "grpc" in imported, imported


def test_the_cli_says_which_path_each_tenant_took(host_cluster: localcluster.Cluster, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``vcm apply``, ``vcm plan`` and ``vcm drift`` (one tenant and ``--all``): ``-o json`` and the table name
    the path; a drifted tenant is compared in full and its drift shown; ``--full`` always takes the engine."""
    monkeypatch.setenv("KUBECONFIG", str(host_cluster.kubeconfig))
    monkeypatch.setenv("VCM_STATE_DIR", str(tmp_path / "state"))
    runner = CliRunner()

    def vcm(*args: str) -> Any:
        res = runner.invoke(cli.app, list(args))
        assert res.exit_code == 0, res.stdout + res.stderr
        return json.loads(res.stdout) if "json" in args else res.stdout + res.stderr

    names = [f"fpcli{os.getpid() % 10000}{i}" for i in range(2)]
    for name in names:
        (tmp_path / "specs").mkdir(exist_ok=True)
        (tmp_path / "specs" / f"{name}.yaml").write_text(json.dumps(_doc(name)))
    folder = str(tmp_path / "specs")
    assert [o["path"] for o in vcm("apply", folder, "--yes", "-o", "json")] == ["engine", "engine"]
    again = vcm("apply", folder, "--yes", "-o", "json")
    assert [(o["path"], o["why"]) for o in again] == [("fingerprint", None)] * 2
    assert "fingerprint" in vcm("apply", folder, "--yes")  # the table's path column
    assert [o["path"] for o in vcm("plan", folder, "-o", "json")] == ["fingerprint"] * 2
    assert [o["path"] for o in vcm("plan", folder, "--full", "-o", "json")] == ["engine"] * 2
    drift = vcm("drift", "--all", "-o", "json")
    assert not drift["drifted"] and {t["path"] for t in drift["tenants"]} == {"fingerprint"}

    kubectl = [str(toolchain.bin_dir() / "kubectl"), "--kubeconfig", str(host_cluster.kubeconfig)]
    subprocess.run([*kubectl, "label", "namespace", f"{names[0]}-app", "pod-security.kubernetes.io/enforce=privileged",
                    "--overwrite"], check=True, capture_output=True)
    drift = vcm("drift", names[0], "-o", "json")
    assert drift["drifted"] and drift["tenants"][0]["path"] == "compared", drift
    assert [c["field"] for c in drift["changes"]] == ["metadata.labels.pod-security.kubernetes.io/enforce"]
    drift = vcm("drift", "--all", "-o", "json")
    assert {t["tenant"]: t["path"] for t in drift["tenants"]} == {names[0]: "compared", names[1]: "fingerprint"}
    applied = vcm("apply", folder, "--yes", "-o", "json")
    assert [o["path"] for o in applied] == ["engine", "fingerprint"]
    assert applied[0]["changes"].get("update") == 1
    assert not vcm("drift", "--all", "-o", "json")["drifted"]
    for name in names:
        vcm("delete", name, "--yes")


def test_a_label_changed_by_someone_else(tenant: Tenant) -> None:
    ns = f"{tenant.name}-app"

    def happen() -> None:
        # someone loosens the namespace's pod security
        tenant.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=privileged", "--overwrite")

    def repaired() -> None:
        assert tenant.get("namespace", ns)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

    _drill(tenant, lambda m: m.setattr(fingerprint, "METADATA_CONTENT", ("annotations",)), happen,
           repaired=repaired)


def test_an_object_deleted(tenant: Tenant) -> None:
    ns = f"{tenant.name}-app"
    real = fingerprint.verdict

    def ignores_missing(held: fingerprint.Fingerprint | None, desired: str, live: dict[str, str]) -> str | None:
        return real(held, desired, {**(held.objects if held else {}), **live})

    def happen() -> None:
        tenant.kubectl("delete", "limitrange", "vcm-limits", "-n", ns)

    def repaired() -> None:
        tenant.get("limitrange", "vcm-limits", ns)

    _drill(tenant, lambda m: m.setattr(fingerprint, "verdict", ignores_missing), happen, repaired=repaired)


def test_a_spec_field_changed_by_another_field_manager(tenant: Tenant) -> None:
    ns = f"{tenant.name}-app"
    patch = json.dumps({"apiVersion": "v1", "kind": "ResourceQuota",
                        "metadata": {"name": "vcm-quota", "namespace": ns}, "spec": {"hard": {"pods": "999"}}})

    def happen() -> None:
        tenant.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager", "someone-else", "-f", "-",
                       stdin=patch)

    def repaired() -> None:
        assert tenant.get("resourcequota", "vcm-quota", ns)["spec"]["hard"]["pods"] != "999"

    _drill(tenant, lambda m: m.setattr(fingerprint, "NOT_CONTENT", fingerprint.NOT_CONTENT | {"spec"}), happen,
           repaired=repaired)


def _without(*keys: str) -> Callable[[pytest.MonkeyPatch], None]:
    """A weakened desired digest that leaves out ``keys`` of ``program.desired_parts`` (``record.X``: key ``X``
    of the recorded outputs only)."""
    real = program.desired_parts

    def parts(*args: Any, **kwargs: Any) -> dict[str, Any]:
        found = real(*args, **kwargs)
        for key in keys:
            if key.startswith("record."):
                found["record"] = {k: v for k, v in found["record"].items() if k != key.removeprefix("record.")}
            else:
                found.pop(key, None)
        return found

    return lambda m: m.setattr(program, "desired_parts", parts)


def test_a_policy_change(tenant: Tenant, tmp_path: Path) -> None:
    policy = spec.load_policy(REPO / "examples" / "policy.yaml")
    changed = dataclasses.replace(tenant.job, tenant=_spec(tmp_path, _doc(tenant.name), policy),
                                  blueprint=platformconfig.Blueprint(policy))
    assert program.render_tenant(changed.tenant, changed.blueprint).objects != \
        program.render_tenant(tenant.job.tenant, tenant.job.blueprint).objects
    # what a policy decides shows in the rendered objects, the recorded policy and the spec's defaults
    _drill(tenant, _without("objects", "record.policy", "record.spec"), lambda: changed)


def test_a_blueprint_template_change(tenant: Tenant, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    (templates / "tenant").mkdir(parents=True)
    name = "tenant/limitrange.yaml.j2"
    labelled = "  labels: {{ labels | tojson }}\nspec:"
    (templates / name).write_text((REPO / "templates" / name).read_text().replace(
        labelled, labelled.replace("\nspec:", '\n  annotations: {"changed": "yes"}\nspec:')))
    changed = dataclasses.replace(tenant.job, blueprint=platformconfig.Blueprint(templates_dir=str(templates)))
    assert program.render_tenant(changed.tenant, changed.blueprint).objects != \
        program.render_tenant(tenant.job.tenant, tenant.job.blueprint).objects
    _drill(tenant, _without("objects"), lambda: changed)


def test_a_tool_version_change(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    def happen() -> None:
        monkeypatch.setattr(vcluster_mgr, "__version__", vcluster_mgr.__version__ + ".next")

    # a new vcm changes nothing on the cluster here, but the engine must run (and record the new fingerprint)
    _drill(tenant, _without("versions"), happen, changes=False)


def test_a_stack_whose_last_update_failed(tenant: Tenant, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    (templates / "tenant").mkdir(parents=True)
    name = "tenant/limitrange.yaml.j2"
    # a ceiling under the default: the API server refuses the LimitRange (422), so the update fails
    (templates / name).write_text((REPO / "templates" / name).read_text().replace(
        "max: {{ limits.max | tojson }}", "max: {\"cpu\": \"1m\"}"))
    broken = dataclasses.replace(tenant.job, blueprint=platformconfig.Blueprint(templates_dir=str(templates)))

    def happen() -> None:
        [failed] = operations.run_jobs(tenant.settings, [broken], "apply", full=True)
        assert not failed.ok and "LimitRange" in (failed.error or "")

    def unsettled_ignored(m: pytest.MonkeyPatch) -> None:
        real = checkpoints.settled
        m.setattr(checkpoints, "settled",
                  lambda *a: dataclasses.replace(found, why=None)
                  if isinstance(found := real(*a), checkpoints.Settled) else found)

    outcome = _drill(tenant, unsettled_ignored, happen, changes=False)
    assert "did not succeed" in (outcome.why or "")


def test_a_state_edited_by_plain_pulumi(tenant: Tenant) -> None:
    ns = f"{tenant.name}-app"
    stack = workspace.tenant_stack_name(tenant.target.name, tenant.name)

    def happen() -> None:
        urn = next(r["urn"] for r in _export(tenant.settings, stack)["resources"]
                   if r["type"] == "kubernetes:core/v1:LimitRange")
        _pulumi(tenant.settings, "state", "delete", urn, "--stack", stack, "--yes", "--force")

    def state_not_compared(m: pytest.MonkeyPatch) -> None:
        real = workspace.tenant_settled

        def settled(s: workspace.Settings, cluster: str, name: str) -> checkpoints.Settled | None:
            found = real(s, cluster, name)
            held = workspace.tenant_record(s, cluster, name).fingerprint
            if found is None or held is None:
                return found
            return dataclasses.replace(found, objects=operations._state_objects(held))

        m.setattr(workspace, "tenant_settled", settled)

    outcome = _drill(tenant, state_not_compared, happen)
    assert outcome.changes.get("create") == 1, outcome.changes  # the LimitRange back in the state
    assert "state" in (outcome.why or "")
    tenant.get("limitrange", "vcm-limits", ns)


def test_a_tenant_applied_from_a_second_machine(tenant: Tenant, tmp_path: Path) -> None:
    """The second machine has its own state directory and backend: what it applied shows on the cluster, so the
    first machine's fingerprint no longer holds there."""
    state = tmp_path / "machine2"
    second = workspace.settings(state_dir=state, backend_url=(state / "pulumi").as_uri(),
                                kubeconfig=tenant.settings.kubeconfig)
    doc = _doc(tenant.name)
    doc["spec"]["quota"] = {"pods": 7}
    theirs = dataclasses.replace(tenant.job, tenant=_spec(tmp_path, doc))

    def happen() -> None:
        tenant.apply(job=theirs, settings=second)

    try:
        _drill(tenant, lambda m: m.setattr(fingerprint, "NOT_CONTENT", fingerprint.NOT_CONTENT | {"spec"}), happen)
    finally:
        # the second machine forgets the tenant without touching the cluster: the first one deletes it
        _pulumi(second, "stack", "rm", "--stack", workspace.tenant_stack_name(tenant.target.name, tenant.name),
                "--yes", "--force")


def _env(s: workspace.Settings) -> dict[str, str]:
    return {**os.environ, **backend.engine_env(s)}


def _pulumi(s: workspace.Settings, *args: str, project: str = workspace.TENANT_PROJECT) -> str:
    """Plain ``pulumi`` in a project's folder: the tenant stacks', or the folder path's batches'."""
    work = workspace.stacks._project_dir(s, project)
    proc = subprocess.run([str(toolchain.bin_dir() / "pulumi"), *args], cwd=work, env=_env(s), capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _export(s: workspace.Settings, stack: str, project: str = workspace.TENANT_PROJECT) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(_pulumi(s, "stack", "export", "--stack", stack, project=project))["deployment"]
    return found


#: one step of a random history: edit the spec (its quota's pod count), edit the cluster (someone else: a label,
#: a deleted object, a spec field through another field manager, an annotation the blueprint does not set), or
#: apply
STEPS = st.lists(st.one_of(
    st.tuples(st.just("spec"), st.integers(min_value=5, max_value=9)),
    st.tuples(st.just("cluster"), st.sampled_from(["label", "delete", "quota", "annotation"])),
    st.tuples(st.just("apply"), st.just(0)),
), min_size=1, max_size=4)


@settings(max_examples=5, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=STEPS)
def test_the_fast_path_agrees_with_a_real_preview(tenant: Tenant, tmp_path: Path,
                                                  steps: list[tuple[str, Any]]) -> None:
    """After every step of a random history, the fast path's verdict against the engine's own: a real
    ``pulumi preview --refresh`` (``vcm plan --full``). Whenever the fast path says "no change", the preview
    must find none; it may send to the engine a tenant the preview finds unchanged (an annotation the
    blueprint does not set), never the other way round."""
    ns = f"{tenant.name}-app"
    job = tenant.job
    tenant.apply(full=True)  # each example starts from the tenant as its spec says
    for kind, arg in steps:
        if kind == "spec":
            doc = _doc(tenant.name)
            doc["spec"]["quota"] = {"pods": arg}
            job = dataclasses.replace(tenant.job, tenant=_spec(tmp_path, doc))
        elif kind == "apply":
            tenant.apply(job=job)
        elif arg == "label":
            tenant.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/warn=privileged", "--overwrite")
        elif arg == "delete":
            tenant.kubectl("delete", "networkpolicy", "--all", "-n", ns)
        elif arg == "quota":
            tenant.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager", "someone-else", "-f", "-",
                           stdin=json.dumps({"apiVersion": "v1", "kind": "ResourceQuota",
                                             "metadata": {"name": "vcm-quota", "namespace": ns},
                                             "spec": {"hard": {"pods": "999"}}}))
        else:
            tenant.kubectl("annotate", "namespace", ns, "someone=else", "--overwrite")
        fast = tenant.prove(job)
        [preview] = operations.run_jobs(tenant.settings, [job], "plan", full=True)
        assert preview.ok, preview.error
        if fast is None:
            assert _changed(preview) == 0, f"the fast path said no change after {steps}; the preview: {preview.changes}"
    tenant.kubectl("annotate", "namespace", ns, "someone-")


def _names_in_both_batches(prefix: str, count: int) -> list[str]:
    """``count`` tenant names, each batch of two holding at least one of them: the split is a hash of the
    name, so names taken blindly (they carry the process id) can all fall into one batch and leave the
    other without a stack, which no assertion about two batches can then hold for."""
    names: list[str] = []
    for i in itertools.count():
        name = f"{prefix}{i}"
        others = {sharding.shard_of(n, 2) for n in names} - {sharding.shard_of(name, 2)}
        if len(names) < count - 1 or others:
            names.append(name)
        if len(names) == count:
            return names
    raise AssertionError("unreachable")


def test_the_folder_path_skips_a_batch_whose_fingerprint_holds(host_cluster: localcluster.Cluster,
                                                               tmp_path: Path) -> None:
    """The folder stacks (``workspace.folder_up``, the GitOps program's): a batch whose fingerprint holds is not
    run; a label changed by someone else, a spec change and a state edited by plain ``pulumi state delete`` each
    send only their batch to the engine, which repairs; ``full`` runs every batch. The weakened twin: with the
    fingerprint's content rule ignoring labels, the changed label goes unseen."""
    from vcluster_mgr.workspace import folder

    s = workspace.settings(state_dir=tmp_path / "state")
    target = platformconfig.Target("default", str(host_cluster.kubeconfig))
    names = _names_in_both_batches(f"fpf{os.getpid() % 10000}", 4)
    tenants = [_spec(tmp_path, _doc(n)) for n in names]
    kubectl = Tenant(names[0], s, target, operations.Job(tenants[0], target, platformconfig.Blueprint()),
                     host_cluster.kubeconfig).kubectl

    def up(ts: list[spec.Tenant] = tenants, full: bool = False) -> folder.FolderOutcome:
        return workspace.folder_up(s, target, platformconfig.Blueprint(), ts, stack_name="fp", batches=2,
                                   with_platform=False, full=full)

    def batch_of(name: str) -> str:
        index = next(i for i in (1, 2) if name in {t.name for t in sharding.select(
            tenants, sharding.Shard(i, 2), key=lambda t: t.name)})
        return f"fp.{index}of2"

    try:
        first = up()
        assert set(first.why.values()) == {"a new stack"} and not first.proven
        again = up()
        assert sorted(again.proven) == ["fp.1of2", "fp.2of2"] and not again.why
        assert again.changes == {"same": sum(first.changes.values())}
        ns = f"{names[0]}-app"

        def relabel() -> None:
            kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=privileged", "--overwrite")

        with pytest.MonkeyPatch.context() as m:  # the weakened twin
            m.setattr(fingerprint, "METADATA_CONTENT", ("annotations",))
            up(full=True)
            relabel()
            assert len(up().proven) == 2, "the weakened fingerprint should have said no change"
        up(full=True)
        relabel()
        repaired = up()
        assert repaired.why == {batch_of(names[0]): f"Namespace {ns} changed on the cluster"}, repaired.why
        assert repaired.changes.get("update") == 1
        labels = json.loads(kubectl("get", "namespace", ns, "-o", "json"))["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"

        doc = _doc(names[1])
        doc["spec"]["quota"] = {"pods": 7}
        changed = [_spec(tmp_path, doc) if t.name == names[1] else t for t in tenants]
        spec_changed = up(changed)
        assert spec_changed.why == {batch_of(names[1]): "the desired state changed"}
        assert up(changed).why == {}

        stack = batch_of(names[2])
        urn = next(r["urn"] for r in _export(s, stack, project=folder.PROJECT)["resources"]
                   if r["type"] == "kubernetes:core/v1:LimitRange" and f"{names[2]}-app" in r["urn"])
        _pulumi(s, "state", "delete", urn, "--stack", stack, "--yes", "--force", project=folder.PROJECT)
        edited = up(changed)
        assert edited.why == {stack: "its state holds other objects than were fingerprinted (the state was edited)"}
        assert edited.changes.get("create") == 1
        assert up(changed).why == {}
        assert set(up(changed, full=True).why.values()) == {"--full"}
    finally:
        for index in (1, 2):
            workspace.destroy(workspace.stack(s, f"fp.{index}of2", lambda: None, project=folder.PROJECT,
                                              target=target))


def test_the_platform_stack_records_its_fingerprint(host_cluster: localcluster.Cluster,
                                                    engine_settings: workspace.Settings) -> None:
    """``vcm platform apply`` records a fingerprint too: each object's digest is the one its live copy, read
    back with a LIST, has now."""
    cfg = platformconfig.load(None, kubeconfig=str(host_cluster.kubeconfig))
    target = cfg.target(None)
    assert operations.platform_apply(engine_settings, target, cfg.blueprint).ok
    outputs = workspace.recorded_outputs(engine_settings, workspace.PLATFORM_PROJECT, target.name)
    held = fingerprint.Fingerprint.model_validate((outputs or {})["fingerprint"])
    assert len(held.objects) == len(render.render_platform(policy=cfg.blueprint.policy))
    with cluster.connect(target) as conn:
        live = cluster.live_digests(conn, {fingerprint.kind_of(k) for k in held.objects},
                                    f"{naming.MANAGED_BY_KEY}={naming.MANAGED_BY_VALUE}")
    assert fingerprint.verdict(held, held.desired, live) is None


CHART = REPO / "tests" / "data" / "charts" / "fake-vcluster"


def _release_secret(t: Tenant, ns: str, release: str, revision: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Helm's record of one revision: the Secret, and the release it holds (base64 of gzipped JSON, in a
    Secret's base64)."""
    secret = t.get("secret", f"sh.helm.release.v1.{release}.v{revision}", ns)
    inner = base64.b64decode(base64.b64decode(secret["data"]["release"]))
    return secret, json.loads(gzip.decompress(inner))


def _hand_rollback(t: Tenant, ns: str, release: str, to: int, current: int) -> None:
    """What ``helm rollback RELEASE TO`` records, done by hand (no helm binary here): revision ``current`` + 1
    holding revision ``to``'s chart and values, deployed; ``current`` superseded."""
    _, old = _release_secret(t, ns, release, to)
    new = current + 1
    old["version"] = new
    old["info"]["status"] = "deployed"
    data = base64.b64encode(base64.b64encode(gzip.compress(json.dumps(old).encode()))).decode()
    t.kubectl("apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": f"sh.helm.release.v1.{release}.v{new}", "namespace": ns,
                     "labels": {"owner": "helm", "name": release, "status": "deployed", "version": str(new)}},
        "data": {"release": data}}))
    secret, was = _release_secret(t, ns, release, current)
    was["info"]["status"] = "superseded"
    secret["data"]["release"] = base64.b64encode(base64.b64encode(gzip.compress(json.dumps(was).encode()))).decode()
    secret["metadata"]["labels"]["status"] = "superseded"
    t.kubectl("replace", "-f", "-", stdin=json.dumps(secret))


def test_a_control_plane_rolled_back_by_hand(host_cluster: localcluster.Cluster, engine_settings: workspace.Settings,
                                             tmp_path: Path) -> None:
    """A tenant with a control plane (a Helm release of the fixture chart) is never proven: its release is a kind
    the fast path does not read back, so every run goes to the engine, which sees a release rolled back by hand
    (a newer revision holding older values) and upgrades it back. The weakened twin leaves the release out of
    the fingerprint: it says no change after the rollback."""
    name = f"fpcp{os.getpid() % 10000}"
    target = platformconfig.Target("default", str(host_cluster.kubeconfig))
    policy = spec.parse_policy({"apiVersion": "vcluster-mgr.dev/v1alpha1", "kind": "Policy",
                                "allowedChartSources": [str(CHART)]})
    blueprint = platformconfig.Blueprint(policy)

    def job(version: str) -> operations.Job:
        doc = _doc(name)
        doc["spec"]["namespaces"] = ["cp"]
        doc["spec"]["controlPlane"] = {"enabled": True, "version": version, "chart": {"path": str(CHART)}}
        return operations.Job(_spec(tmp_path, doc, policy), target, blueprint, allow_data_loss=True)

    t = Tenant(name, engine_settings, target, job("1.33.4"), host_cluster.kubeconfig)
    ns, release = f"{name}-cp", name
    newer = dataclasses.replace(job("1.34.1"), allow_data_loss=False)
    try:
        t.apply()
        t.apply(job=job("1.34.1"))  # revision 2
        why = t.prove(newer)
        assert why is not None and "Release" in why, why
        _hand_rollback(t, ns, release, to=1, current=2)
        real_provable, real_verdict = fingerprint.provable, fingerprint.verdict

        def without_release(keys: Any) -> list[str]:
            return [k for k in keys if "|Release|" not in k]

        with pytest.MonkeyPatch.context() as m:  # the weakened twin: the release left out
            m.setattr(fingerprint, "provable", lambda keys: real_provable(without_release(keys)))
            m.setattr(fingerprint, "verdict", lambda held, desired, live: real_verdict(
                held.model_copy(update={"objects": {k: held.objects[k] for k in without_release(held.objects)}})
                if held else None, desired, live))
            assert t.prove(newer) is None, "the weakened fingerprint should have said no change"
        outcome = t.apply(job=newer)
        assert outcome.path == workspace.ENGINE_PATH and "Release" in (outcome.why or "")
        assert outcome.changes.get("update") == 1, outcome.changes
        latest = max(int(s["metadata"]["labels"]["version"]) for s in json.loads(t.kubectl(
            "get", "secret", "-n", ns, "-l", f"owner=helm,name={release}", "-o", "json"))["items"])
        assert latest == 4
        _, deployed = _release_secret(t, ns, release, latest)
        assert deployed["info"]["status"] == "deployed"
        assert json.dumps(deployed["config"]) != json.dumps(_release_secret(t, ns, release, 1)[1]["config"])
    finally:
        operations.delete_tenant(engine_settings, target, name)
