"""Every command of the Typer app, fed bad input, fails cleanly: exit 1 or 2, a message, never a traceback.

The cases are generated from the app itself (the click command tree Typer builds), so a new command or
option is covered without editing this file. Each case keeps every other argument valid and makes one thing
bad, chosen by the parameter's type and name:

* input files (spec paths, ``--policy``, ``--config``, ...): missing, empty, not UTF-8, malformed YAML, a folder,
  ``/dev/zero``, a FIFO, a file over the size cap (each case runs with a bound on memory and time, so a
  regression fails instead of reading without end or hanging);
* output files and ``--state-dir``: a place that cannot be written (below a regular file);
* ``--kubeconfig``: missing, not UTF-8, malformed, a folder, ``/dev/zero``, a FIFO, over the cap, and a
  well-formed one whose server refuses connections (every command must give up quickly and say so);
* option values: a number, duration (``--ttl``), time (``--now``), name prefix, output format, check id or
  backend URL that is not one; an unknown host cluster or context;
* a tenant name that does not exist (and one that is not a name at all);
* and, for every command, an option that does not exist.

Nothing here reaches a real cluster or a real state: the state dir is a fresh temporary folder, KUBECONFIG
points at a refusing server, and the cache dir shares only the toolchain's binaries (no local clusters), so
``vcm local`` commands find none and nothing is started or stopped.
"""

from __future__ import annotations

import enum
import os
import resource
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import cli_tree
import pytest
from typer.testing import CliRunner

from vcluster_mgr import cli, reading, toolchain

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "examples" / "tenants" / "payments.yaml"

REFUSING_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: not-a-token}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"""


@dataclass(frozen=True)
class Case:
    """One command with one bad thing: ``param`` (None: an unknown option) made bad by ``make``."""

    command: tuple[str, ...]
    what: str
    param: str | None = None
    make: Callable[[Path], str] | None = None

    @property
    def id(self) -> str:
        return f"{' '.join(self.command)}: {self.what}"


# -- bad values, by kind ----------------------------------------------------------------------------
# Each maker gets the case folder and returns the argument value (files are created on the spot).


def _missing(d: Path) -> str:
    return str(d / "does-not-exist.yaml")


def _empty(d: Path) -> str:
    (d / "empty.yaml").write_text("")
    return str(d / "empty.yaml")


def _not_utf8(d: Path) -> str:
    (d / "latin1.yaml").write_bytes(b"metadata: {name: caf\xe9}\n\xff\xfe\n")
    return str(d / "latin1.yaml")


def _malformed(d: Path) -> str:
    (d / "malformed.yaml").write_text("apiVersion: [unclosed\n  kind: : :\n\t- tab\n")
    return str(d / "malformed.yaml")


def _folder(d: Path) -> str:
    (d / "a-folder").mkdir(exist_ok=True)
    return str(d / "a-folder")


def _below_a_file(d: Path) -> str:
    (d / "a-file").write_text("x")
    return str(d / "a-file" / "sub" / "out.yaml")


def _dev_zero(_d: Path) -> str:
    return "/dev/zero"  # endless: read without a bound, it ends only when the kernel kills the reader


def _fifo(d: Path) -> str:
    os.mkfifo(d / "pipe.yaml")
    return str(d / "pipe.yaml")  # no writer: an open that waits for one hangs for ever


def _over_the_cap(d: Path) -> str:
    with (d / "huge.yaml").open("wb") as fh:  # sparse: no disk used
        fh.truncate(reading.MAX_BYTES + 1)
    return str(d / "huge.yaml")


def _refusing_kubeconfig(d: Path) -> str:
    (d / "refusing.kubeconfig").write_text(REFUSING_KUBECONFIG)
    return str(d / "refusing.kubeconfig")


def _value(text: str) -> Callable[[Path], str]:
    return lambda _d: text


UNBOUNDED = {"/dev/zero": _dev_zero, "a FIFO": _fifo, "over the size cap": _over_the_cap}
"""Files that are no files, or too much of one: each must be refused without reading it (see ``reading``)."""
INPUT_FILE = {
    "missing file": _missing,
    "empty file": _empty,
    "non-UTF-8 file": _not_utf8,
    "malformed YAML": _malformed,
    "a folder": _folder,
    **UNBOUNDED,
}
SPEC_PATHS = {k: v for k, v in INPUT_FILE.items() if k != "a folder"}  # a folder of specs is valid
OUTPUT_FILE = {"unwritable output": _below_a_file}
KUBECONFIG = {
    "missing kubeconfig": _missing,
    "non-UTF-8 kubeconfig": _not_utf8,
    "malformed kubeconfig": _malformed,
    "kubeconfig is a folder": _folder,
    "unreachable server": _refusing_kubeconfig,
    **{f"kubeconfig {what}": make for what, make in UNBOUNDED.items()},
}

BY_NAME: dict[str, dict[str, Any]] = {
    "kubeconfig": KUBECONFIG,
    "state_dir": {"state dir below a file": _below_a_file, "state dir is a file": _empty},
    "backend_url": {
        "unknown backend scheme": _value("nosuch://nowhere"),
        "unusable backend folder": lambda d: Path(_below_a_file(d)).as_uri(),
    },
    "templates": {"missing templates folder": _missing, "templates is a file": _empty},
    "output": OUTPUT_FILE,
    "output_file": OUTPUT_FILE,
    "kubeconfig_out": OUTPUT_FILE,
    "ttl": {"bad duration": _value("two-hours"), "zero duration": _value("0s")},
    "now": {"bad time": _value("notatime")},
    "version": {"not an exact version": _value("^0.36")},
    "name_prefix": {"bad name prefix": _value("Not A Prefix!")},
    "context": {"unknown context": _value("no-such-context")},
    "cluster": {"unknown host cluster": _value("no-such-cluster")},
    "check": {"unknown check": _value("no-such-check")},
    "spec_path": {"spec path a shell would expand": _value("$(whoami).yaml")},
    # vcm snapshot --to / vcm delete --snapshot-to: a place that cannot be written, a scheme we do not keep
    "to": {**OUTPUT_FILE, "unknown scheme": _value("ftp://host/x.tar.gz"), "s3 without bucket": _value("s3:///k")},
    "snapshot_to": {"unknown scheme": _value("ftp://host/x.tar.gz")},
    # vcm restore --from: every bad input file, one that is no snapshot, an S3 prefix instead of a key
    "source": {**INPUT_FILE, "unknown scheme": _value("ftp://host/x.tar.gz"), "s3 prefix": _value("s3://b/p/")},
}
"""Bad values for parameters known by name (whatever their type)."""

TENANT_NAME = {"unknown tenant": _value("no-such-tenant"), "not a name": _value("Not A Name!")}
LOCAL_NAME = {"bad local cluster name": _value("Not A Name!")}


def _bad_values(command: tuple[str, ...], param: Any) -> dict[str, Any]:
    annotation = param.type_descriptor.annotation
    if get_origin(annotation) is list:
        annotation = get_args(annotation)[0]
    if param.name in BY_NAME:
        return BY_NAME[param.name]
    if param.name == "name":
        if param.param_type_name == "option":
            return LOCAL_NAME
        if command == ("init",):  # a new tenant: any valid name is fine
            return {"not a name": TENANT_NAME["not a name"]}
        return TENANT_NAME
    if annotation is Path:
        return SPEC_PATHS if param.param_type_name == "argument" else INPUT_FILE
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"unknown choice": _value("no-such-choice")}
    if annotation in (int, float):
        return {"not a number": _value("not-a-number")}
    if param.param_type_name == "argument" and annotation is str:
        return {"unknown choice": _value("no-such-kind")}
    return {}


# -- valid values for everything else -----------------------------------------------------------------


def _valid(command: tuple[str, ...], param: Any) -> list[str]:
    """The arguments that make ``param`` valid, or [] to leave it at its default."""
    if param.param_type_name == "argument":
        if not param.required:
            return []
        if param.name == "paths":
            return [str(SPEC)]
        if param.name == "name":
            return ["demo"] if command == ("init",) else ["payments"]
        if param.name == "system":
            return ["github"]
        raise AssertionError(f"vcm {' '.join(command)}: add a valid value for argument {param.name}")
    if param.name == "yes":
        return ["--yes"]  # never stop at the confirmation: the bad input must be what fails
    if param.required:
        if param.name == "user":
            return [param.opts[0], "alice@example.com"]
        if param.name in {"to", "source"}:  # vcm snapshot --to, vcm restore --from
            return [param.opts[0], "snapshots/payments.tar.gz"]
        raise AssertionError(f"vcm {' '.join(command)}: add a valid value for option {param.name}")
    return []


def _cases() -> list[Case]:
    cases = []
    for command, click_command in cli_tree.commands():
        cases.append(Case(command, "unknown option"))
        for param in click_command.params:
            for what, make in _bad_values(command, param).items():
                cases.append(Case(command, f"{param.name}: {what}", param.name, make))
    return cases


CASES = _cases()


def _argv(case: Case, d: Path) -> list[str]:
    """The command line of ``case``: every parameter valid but the bad one."""
    argv = list(case.command)
    for param in dict(cli_tree.commands())[case.command].params:
        if param.name == case.param and case.make is not None:
            value = case.make(d)
            argv += [value] if param.param_type_name == "argument" else [param.opts[0], value]
        else:
            argv += _valid(case.command, param)
    return argv if case.param is not None else [*argv, "--no-such-option"]


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment with a private state, a refusing default cluster and no local clusters."""
    root = tmp_path_factory.mktemp("isolated")
    cache = root / "cache"
    cache.mkdir()
    real = toolchain.cache_dir()
    (cache / "bin").symlink_to(real / "bin", target_is_directory=True)  # the binaries only: no local clusters
    (root / "default.kubeconfig").write_text(REFUSING_KUBECONFIG)
    return {
        "VCM_CACHE_DIR": str(cache),
        "VCM_STATE_DIR": str(root / "state"),
        "VCM_PASSPHRASE": "bad-input-test",
        "KUBECONFIG": str(root / "default.kubeconfig"),
        "VCM_CONFIG": "",
        "VCM_BACKEND_URL": "",
        "PULUMI_BACKEND_URL": "",
        "COLUMNS": "200",
    }


def test_every_command_is_covered() -> None:
    """The generator reaches every command of the app, and every command with values to give gets bad ones."""
    commands = dict(cli_tree.commands())
    assert {case.command for case in CASES} == set(commands)
    for command, click_command in commands.items():
        takes_values = [p for p in click_command.params if not getattr(p, "is_flag", False) and p.name != "group"]
        if takes_values:
            assert sum(case.command == command for case in CASES) > 1, f"vcm {' '.join(command)} gets no bad values"


NOTHING_TO_DO = {"gc: kubeconfig: unreachable server"}
"""Cases that may succeed: with an empty state ``vcm gc`` has no tenant to delete, so it never contacts the
(well-formed but unreachable) cluster."""


@contextmanager
def _bounded_memory(extra: int = 1024**3) -> Iterator[None]:
    """At most ``extra`` bytes more address space for this process while inside (a read of /dev/zero
    without a bound then fails in about a second with MemoryError, instead of taking the machine's memory)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    used = int(next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmSize:"))
               .split()[1]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (used + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_fails_cleanly(
    case: Case, isolated: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = _argv(case, tmp_path)
    bound = _bounded_memory() if case.make is _dev_zero else nullcontext()
    with bound:
        result = CliRunner().invoke(cli.app, argv, env=isolated, catch_exceptions=True)
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "Traceback" not in output, f"vcm {' '.join(argv)} printed a traceback:\n{output}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"vcm {' '.join(argv)} raised {result.exception!r}") from result.exception
    if case.id in NOTHING_TO_DO and result.exit_code == 0:
        return
    assert result.exit_code in (1, 2), f"vcm {' '.join(argv)} exited {result.exit_code}:\n{output}"
    assert output.strip(), f"vcm {' '.join(argv)} failed without a message"


def test_a_bad_value_is_named_in_the_message(isolated: dict[str, str], tmp_path: Path) -> None:
    """Spot checks that the one message names what was wrong."""
    runner = CliRunner()
    for argv, fragment in (
        (["gc", "--now", "notatime"], "--now"),
        (["ephemeral", "create", _not_utf8(tmp_path)], "UTF-8"),
        (["ephemeral", "create", _missing(tmp_path)], "does-not-exist.yaml"),
        (["apply", str(SPEC), "--yes", "--config", _not_utf8(tmp_path)], "UTF-8"),
        (["plan", str(SPEC), "--kubeconfig", _missing(tmp_path)], "does-not-exist.yaml"),
    ):
        result = runner.invoke(cli.app, argv, env=isolated)
        output = result.output + (result.stderr if result.stderr_bytes is not None else "")
        assert result.exit_code in (1, 2) and fragment in output, (argv, result.exit_code, output)


def test_isolation_really_isolates(isolated: dict[str, str]) -> None:
    assert not (Path(isolated["VCM_CACHE_DIR"]) / "local").exists()
    assert os.path.realpath(Path(isolated["VCM_CACHE_DIR"]) / "bin") == str(toolchain.cache_dir() / "bin")
