"""Bounded input: every file vcm reads is a regular file (or stdin) read up to a size cap, else exit 2.

One case per way a named file can be no file at all or too much of one, through the real ``vcm`` in a
child process: ``/dev/zero`` (once read until the kernel killed vcm at about 23 GB, and other processes of
the machine on the way), a FIFO (once waited on for ever), a file over the cap, and stdin, for tenant specs,
``--policy``, ``--config``, ``--kubeconfig``, a local chart and the state dir's passphrase file; and the
platform config that was a traceback (``clusters: 7``). The child runs with its address space limited to
2 GiB and a timeout, so a regression fails the test quickly instead of hanging it or eating the machine's
memory. The reading function itself (``vcluster_mgr.reading``) is covered below the CLI too: sizes that
lie (``/proc``), links to devices.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from vcluster_mgr import errors, naming, reading

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "examples" / "tenants" / "payments.yaml"
LIMIT_BYTES = 2 * 1024**3
"""The child's address space (2 GiB): reading /dev/zero without a bound fails within a second under it."""
TIMEOUT = 60
"""Seconds a child may take (a FIFO waited on would hang for ever)."""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))


def vcm(*args: str | Path, stdin: int | None = subprocess.DEVNULL, cwd: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    """``vcm ARGS`` in a child process with bounded memory and time; no cluster, no platform config."""
    drop = ("VCM_CONFIG", "KUBECONFIG", "VCM_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE", "VCM_STATE_DIR")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["KUBECONFIG"] = os.devnull + ".missing"  # nothing to reach; these commands must stop before
    return subprocess.run(
        [sys.executable, "-m", "vcluster_mgr", *map(str, args)],
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd,
        env=env,
        preexec_fn=_limit_memory,  # runs in the child between fork and exec: only setrlimit
        check=False,
    )


def _refused(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert fragment in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "tenant.yaml"
    os.mkfifo(path)
    return path


@pytest.fixture
def oversize(tmp_path: Path) -> Path:
    """A sparse regular file one byte over the cap (no disk used)."""
    path = tmp_path / "huge.yaml"
    with path.open("wb") as fh:
        fh.truncate(reading.MAX_BYTES + 1)
    return path


@pytest.mark.timeout(TIMEOUT * 2)
def test_validate_dev_zero_is_refused_not_read() -> None:
    _refused(vcm("validate", "/dev/zero"), "/dev/zero: (file): is a character device, not a regular file")


@pytest.mark.timeout(TIMEOUT * 2)
def test_validate_a_fifo_is_refused_not_waited_on(fifo: Path) -> None:
    _refused(vcm("validate", fifo), f"{fifo}: (file): is a FIFO (named pipe), not a regular file")


@pytest.mark.timeout(TIMEOUT * 2)
def test_validate_a_file_over_the_cap_is_refused(oversize: Path) -> None:
    _refused(vcm("validate", oversize), f"is larger than {reading.MAX_BYTES} bytes")


@pytest.mark.timeout(TIMEOUT * 2)
def test_policy_dev_zero_and_fifo_are_refused(fifo: Path) -> None:
    _refused(vcm("validate", SPEC, "--policy", "/dev/zero"), "/dev/zero: (file): is a character device")
    _refused(vcm("render", SPEC, "--policy", fifo), "is a FIFO")


@pytest.mark.timeout(TIMEOUT * 2)
def test_config_dev_zero_and_fifo_are_refused(fifo: Path) -> None:
    _refused(vcm("plan", SPEC, "--config", "/dev/zero"), "/dev/zero: (file): is a character device")
    _refused(vcm("plan", SPEC, "--config", fifo), "is a FIFO")


@pytest.mark.timeout(TIMEOUT * 2)
def test_config_with_clusters_7_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "platform.yaml"
    config.write_text("clusters: 7\n")
    _refused(vcm("plan", SPEC, "--config", config), f"{config}: clusters: expected a list, got 7")


@pytest.mark.timeout(TIMEOUT * 2)
def test_kubeconfig_dev_zero_and_fifo_are_refused_before_the_client_reads_them(fifo: Path, tmp_path: Path) -> None:
    _refused(vcm("plan", SPEC, "--kubeconfig", "/dev/zero"), "--kubeconfig: /dev/zero is a character device")
    config = tmp_path / "platform.yaml"
    config.write_text(f"clusters:\n  - {{name: a, kubeconfig: {fifo}}}\n")
    _refused(vcm("plan", SPEC, "--config", config), f"clusters[0].kubeconfig: {fifo} is a FIFO")


@pytest.mark.timeout(TIMEOUT * 2)
def test_stdin_is_read_capped() -> None:
    with SPEC.open("rb") as fh:
        proc = vcm("validate", "-", stdin=fh.fileno())
    assert (proc.returncode, proc.stdout) == (0, "OK payments (<stdin>)\n"), proc.stderr
    with open("/dev/zero", "rb") as zero:
        _refused(vcm("validate", "-", stdin=zero.fileno()), f"<stdin>: (file): is larger than {reading.MAX_BYTES}")


@pytest.mark.timeout(TIMEOUT * 2)
def test_a_local_chart_that_is_a_fifo_is_refused_before_helm_reads_it(tmp_path: Path) -> None:
    """``controlPlane.chart.path`` is read by Helm inside the engine, without a bound: vcm looks first."""
    os.mkfifo(tmp_path / "vcluster.tgz")
    text = (REPO / "examples" / "controlplane" / "vteam.yaml").read_text()
    chart_line = f"      version: {naming.CONTROL_PLANE_CHART_VERSION} "
    assert chart_line in text  # the example names the pinned chart: the path goes beside it
    text = text.replace(chart_line, f"      path: {tmp_path / 'vcluster.tgz'}\n{chart_line}")
    (tmp_path / "vteam.yaml").write_text(text)
    (tmp_path / "policy.yaml").write_text(f"apiVersion: vcluster-mgr.dev/v1alpha1\nkind: Policy\n"
                                          f"allowedChartSources: [{tmp_path}]\n")
    proc = vcm("validate", "vteam.yaml", "--policy", "policy.yaml", cwd=tmp_path)
    _refused(proc, f"spec.controlPlane.chart.path: {tmp_path / 'vcluster.tgz'} is a FIFO")
    (tmp_path / "vcluster.tgz").unlink()
    (tmp_path / "vcluster.tgz").write_bytes(b"\x1f\x8b")  # an archive of a sane size: Helm's to judge
    assert vcm("validate", "vteam.yaml", "--policy", "policy.yaml", cwd=tmp_path).returncode == 0


@pytest.mark.timeout(TIMEOUT * 2)
def test_a_state_dir_whose_passphrase_is_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "passphrase")
    _refused(vcm("list", "--state-dir", tmp_path), f"{tmp_path / 'passphrase'}: (file): is a FIFO")


# -- the reading function itself ------------------------------------------------------------------------


def test_a_file_whose_size_lies_is_read_to_its_end_within_the_cap() -> None:
    """/proc files say 0 bytes; they are regular and read in full."""
    assert os.stat("/proc/self/status").st_size == 0
    assert "Pid:" in reading.read_text("/proc/self/status")


def test_a_link_to_a_device_is_refused_and_a_missing_file_named(tmp_path: Path) -> None:
    (tmp_path / "link.yaml").symlink_to("/dev/zero")
    with pytest.raises(errors.SpecError, match="is a character device"):
        reading.read_bytes(tmp_path / "link.yaml")
    with pytest.raises(errors.SpecError, match="does not exist"):
        reading.read_bytes(tmp_path / "nope.yaml")
    with pytest.raises(errors.SpecError, match="is a folder"):
        reading.read_bytes(tmp_path)


def test_exactly_the_cap_is_read_and_one_byte_more_is_not(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    assert reading.read_bytes(path, limit=10) == b"x" * 10
    with pytest.raises(errors.SpecError, match="larger than 9 bytes"):
        reading.read_bytes(path, limit=9)


def test_a_missing_kubeconfig_is_left_to_the_default_resolution(tmp_path: Path) -> None:
    reading.check_if_present(tmp_path / "absent")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(errors.SpecError, match="FIFO"):
        reading.check_if_present(tmp_path / "pipe")
