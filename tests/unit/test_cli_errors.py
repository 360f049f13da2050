"""Every subcommand, given bad arguments and bad files, ends in one `error:` line naming the culprit, a non-zero
exit status and no traceback; run as a user runs it (the installed console script, in a process of its own).

Nothing here talks to anything but loopback: the clusters are kubeconfigs pointing at a closed loopback port,
and the environment has no kubeconfig and no proxy settings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from proxycontroller.testing.servers.processes import ManagedProcess, free_port, running
from tests.conftest import REPO

SCRIPT = str(Path(sys.executable).parent / "proxycontroller")
UPSTREAM = REPO / "examples" / "upstreams" / "gloo-system" / "default-petstore-8080.yaml"


def kubeconfig(server: str, context: str = "test") -> str:
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{server: '{server}'}}}}]\n"
        f"contexts: [{{name: {context}, context: {{cluster: c, user: u}}}}]\n"
        f"current-context: {context}\n"
        "users: [{name: u, user: {token: t}}]\n"
    )


@dataclass(frozen=True)
class Case:
    """`args` and `files` may hold {tmp} (the test's directory), {closed} (a loopback port nothing listens on)
    and {taken} (one something listens on); a file of content None is a directory."""

    name: str
    args: tuple[str, ...]
    culprit: str  # what the error line must say
    exit_code: int = 2
    files: Mapping[str, str | None] = field(default_factory=dict)


TREE: dict[str, str | None] = {"gloo/config/upstreams": None, "gloo/config/proxies": None}
REFUSED = {"kube.yaml": kubeconfig("https://127.0.0.1:{closed}")}
UNREACHABLE = (
    "cluster https://127.0.0.1:{closed} (kubeconfig {tmp}/kube.yaml, context test) is unreachable: connection refused"
)
CONFIG_CASES = [
    ("config-not-yaml", "proxies: [}", "config.yaml: not valid YAML"),
    ("config-not-a-mapping", "- a\n- b\n", "config.yaml: expected a mapping at the top level, got list"),
    ("config-unknown-key", "colour: blue\n", "config.yaml: colour: Extra inputs are not permitted"),
    ("config-bad-value", "proxies: [{listeners: [{bindPort: 0}]}]\n", "config.yaml: proxies[0].listeners[0].bindPort"),
    ("config-unknown-strategy", "strategy: {kind: canary}\n", "strategy.kind: unknown strategy 'canary'"),
    ("config-plugin-missing", "strategy: {kind: plugin, plugin: 'no_such_module:f'}\n", "no_such_module"),
]

CASES = [
    Case("unknown-command", ("frobnicate",), "no such command 'frobnicate'"),
    # render
    Case("render-no-input", ("render",), "missing option '-f'"),
    Case("render-missing-file", ("render", "-f", "{tmp}/nope.yaml"), "nope.yaml: no such file or directory"),
    Case(
        "render-bad-yaml",
        ("render", "-f", "{tmp}/bad.yaml"),
        "bad.yaml: document 1: not valid YAML",
        2,
        {"bad.yaml": "kind: [unclosed"},
    ),
    Case(
        "render-not-utf8",
        ("render", "-f", "{tmp}/up"),
        "latin1.yaml: not UTF-8 text",
        2,
        {"up/latin1.yaml": "name: caf\xe9"},
    ),
    Case("render-bad-output", ("render", "-f", str(UPSTREAM), "-o", "xml"), "invalid value for '-o' / '--output'"),
    Case("render-config-is-a-directory", ("render", "-f", str(UPSTREAM), "--config", "{tmp}"), "is a directory"),
    Case(
        "render-config-missing",
        ("render", "-f", str(UPSTREAM), "--config", "{tmp}/config.yaml"),
        "config.yaml: cannot read: No such file or directory",
    ),
    Case(
        "render-config-endless",
        ("render", "-f", str(UPSTREAM), "--config", "/dev/zero"),
        "/dev/zero: larger than the limit of 67108864 bytes (limits.maxFileBytes)",
    ),
    Case(
        "render-input-over-limit",
        ("render", "-f", "{tmp}/big.yaml", "--config", "{tmp}/config.yaml"),
        "big.yaml: larger than the limit of 1024 bytes (limits.maxInputBytes)",
        2,
        {"big.yaml": "# padding\n" * 200, "config.yaml": "limits: {maxInputBytes: 1024}\n"},
    ),
    *[
        Case(
            f"render-{name}",
            ("render", "-f", str(UPSTREAM), "--config", "{tmp}/config.yaml"),
            culprit,
            2,
            {"config.yaml": text},
        )
        for name, text, culprit in CONFIG_CASES
    ],
    # run
    Case(
        "run-probe-port-out-of-range",
        ("run", "--config-dir", "{tmp}/gloo/config", "--probe-address", "127.0.0.1:99999"),
        "--probe-address 127.0.0.1:99999: port 99999 is out of range 0-65535",
        2,
        TREE,
    ),
    Case(
        "run-probe-no-port",
        ("run", "--config-dir", "{tmp}/gloo/config", "--probe-address", "localhost"),
        "--probe-address localhost: expected host:port",
        2,
        TREE,
    ),
    Case(
        "run-probe-port-not-a-number",
        ("run", "--probe-address", "127.0.0.1:http"),
        "--probe-address 127.0.0.1:http: port 'http' is not a number",
    ),
    Case(
        "run-probe-v6-without-brackets",
        ("run", "--probe-address", "::1:9091"),
        "--probe-address ::1:9091: put an IPv6 address in brackets",
    ),
    Case(
        "run-probe-port-taken",
        ("run", "--config-dir", "{tmp}/gloo/config", "--probe-address", "127.0.0.1:{taken}"),
        "--probe-address 127.0.0.1:{taken}: address already in use",
        2,
        TREE,
    ),
    Case(
        "run-probe-host-unknown",
        ("run", "--config-dir", "{tmp}/gloo/config", "--probe-address", "no-such-host.invalid:0"),
        "--probe-address no-such-host.invalid:0: cannot resolve the host",
        2,
        TREE,
    ),
    Case(
        "run-config-dir-missing",
        ("run", "--config-dir", "{tmp}/gloo/confg", "--probe-address", ""),
        "--config-dir {tmp}/gloo/confg: no such directory; did you mean {tmp}/gloo/config?",
        2,
        TREE,
    ),
    Case(
        "run-config-dir-is-glooss-root",
        ("run", "--config-dir", "{tmp}/gloo", "--probe-address", ""),
        "--config-dir {tmp}/gloo: upstreams/ is missing there; expected Gloo's directory config tree",
        2,
        TREE,
    ),
    Case(
        "run-config-dir-is-a-file",
        ("run", "--config-dir", str(UPSTREAM), "--probe-address", ""),
        f"--config-dir {UPSTREAM}: not a directory",
    ),
    Case(
        "run-config-dir-and-kubeconfig",
        ("run", "--config-dir", "{tmp}/gloo/config", "--kubeconfig", "{tmp}/kube.yaml"),
        "--config-dir (Gloo's directory mode) and --kubeconfig (a cluster) exclude each other",
        2,
        {**TREE, **REFUSED},
    ),
    Case("run-no-kubeconfig", ("run", "--probe-address", ""), "no kubeconfig: not in a pod"),
    Case(
        "run-kubeconfig-missing",
        ("run", "--kubeconfig", "{tmp}/nope.yaml"),
        "--kubeconfig': File '{tmp}/nope.yaml' does not exist",
    ),
    Case(
        "run-cluster-refused",
        ("run", "--kubeconfig", "{tmp}/kube.yaml", "--probe-address", ""),
        UNREACHABLE,
        1,
        REFUSED,
    ),
    Case(
        "run-kubeconfig-not-yaml",
        ("run", "--kubeconfig", "{tmp}/kube.yaml"),
        "kube.yaml: not valid YAML",
        2,
        {"kube.yaml": "clusters: [}"},
    ),
    Case(
        "run-kubeconfig-no-such-context",
        ("run", "--kubeconfig", "{tmp}/kube.yaml", "--context", "prod"),
        "kube.yaml: no context 'prod' (contexts: test)",
        2,
        REFUSED,
    ),
    Case("run-bad-log-level", ("run", "--log-level", "loud"), "invalid value for '--log-level'"),
    Case("run-unknown-option", ("run", "--dir", "x"), "no such option '--dir'"),
    *[
        Case(
            f"run-{name}",
            ("run", "--config-dir", "{tmp}/gloo/config", "--config", "{tmp}/config.yaml"),
            culprit,
            2,
            {**TREE, "config.yaml": text},
        )
        for name, text, culprit in CONFIG_CASES
    ],
    # status
    Case(
        "status-config-dir-missing",
        ("status", "--config-dir", "{tmp}/nonexistent"),
        "--config-dir {tmp}/nonexistent: no such directory",
    ),
    Case(
        "status-config-dir-not-glooss",
        ("status", "--config-dir", "{tmp}"),
        "--config-dir {tmp}: upstreams/ is missing there",
    ),
    Case("status-no-kubeconfig", ("status",), "no kubeconfig: not in a pod"),
    Case(
        "status-cluster-refused",
        ("status", "--kubeconfig", "{tmp}/kube.yaml"),
        UNREACHABLE,
        1,
        REFUSED,
    ),
    Case(
        "status-kubeconfig-not-a-mapping",
        ("status", "--kubeconfig", "{tmp}/kube.yaml"),
        "kube.yaml: expected a mapping at the top level, got list",
        2,
        {"kube.yaml": "- a\n"},
    ),
    Case(
        "status-kubeconfig-not-a-kubeconfig",
        ("status", "--kubeconfig", "{tmp}/kube.yaml"),
        "kube.yaml: not a kubeconfig: missing key 'clusters'",
        2,
        {"kube.yaml": "apiVersion: v1\n"},
    ),
    Case(
        "status-kubeconfig-context-without-cluster",
        ("status", "--kubeconfig", "{tmp}/kube.yaml"),
        "context 'test' names cluster 'c', which is not defined",
        2,
        {"kube.yaml": "clusters: []\ncontexts: [{name: test, context: {cluster: c}}]\ncurrent-context: test\n"},
    ),
    Case(
        "status-kubeconfig-ca-missing",
        ("status", "--kubeconfig", "{tmp}/kube.yaml"),
        "context 'test': certificate-authority {tmp}/ca.crt: no such file",
        2,
        {
            "kube.yaml": kubeconfig("https://127.0.0.1:{closed}").replace(
                "server:", "certificate-authority: ca.crt, server:"
            )
        },
    ),
    Case("status-bad-timeout", ("status", "--timeout", "-1"), "invalid value for '--timeout'"),
    *[
        Case(
            f"status-{name}",
            ("status", "--config-dir", "{tmp}/gloo/config", "--config", "{tmp}/config.yaml"),
            culprit,
            2,
            {**TREE, "config.yaml": text},
        )
        for name, text, culprit in CONFIG_CASES[:3]
    ],
    # demo (only its options: a good demo builds Gloo)
    Case("demo-port-not-a-number", ("demo", "--port", "http"), "invalid value for '--port'"),
    Case(
        "demo-port-out-of-range", ("demo", "--port", "70000"), "invalid value for '--port': 70000 is not in the range"
    ),
    Case("demo-port-taken", ("demo", "--port", "{taken}"), "--port 127.0.0.1:{taken}: address already in use"),
    Case("demo-work-dir-is-a-file", ("demo", "--work-dir", str(UPSTREAM)), "is a file"),
    # manifests and url (more in test_manifests.py and tests/kube/test_url.py)
    Case(
        "manifests-bad-service-type",
        ("manifests", "--config", "{tmp}/c.yaml"),
        "c.yaml: deployment.envoy.serviceType: Input should be 'LoadBalancer', 'NodePort' or 'ClusterIP'",
        files={"c.yaml": "deployment: {envoy: {serviceType: Ingress}}\n"},
    ),
    Case(
        "services-in-directory-mode",
        ("run", "--config-dir", "{tmp}/gloo/config", "--config", "{tmp}/c.yaml"),
        "config sources: 'services' needs a cluster (--kubeconfig)",
        files={**TREE, "c.yaml": "sources: [upstreams, services]\n"},
    ),
    Case("url-without-proxy", ("url",), "missing option '--proxy'"),
    Case("url-no-kubeconfig", ("url", "--proxy", "my-cool-proxy"), "no kubeconfig: not in a pod"),
    Case("url-cluster-refused", ("url", "--kubeconfig", "{tmp}/kube.yaml", "--proxy", "p"), UNREACHABLE, 1, REFUSED),
]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port a server listens on, as a second controller's probes would."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


def isolated_env(home: Path) -> dict[str, str]:
    """No kubeconfig, no in-cluster address, no HTTP proxy: a cluster is only ever what a test names."""
    dropped = {"KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"}
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.lower().endswith("_proxy")}
    return {**env, "HOME": str(home), "NO_PROXY": "*"}


def fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def invoke(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, timeout=60, env=isolated_env(home), check=False
    )


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_mistake_is_one_error_line_naming_it_and_no_traceback(case: Case, tmp_path: Path, taken_port: int) -> None:
    values = {"tmp": str(tmp_path), "closed": str(free_port()), "taken": str(taken_port)}
    for name, content in case.files.items():
        path = tmp_path / name
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(fill(content, values).encode("latin-1"))
    result = invoke([fill(arg, values) for arg in case.args], tmp_path)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == case.exit_code, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr  # one line
    assert result.stderr.startswith("error: ")
    assert fill(case.culprit, values) in result.stderr


@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["run", "--help"], ["status", "-h"], ["render", "--help"], ["demo", "--help"]]
)
def test_help_and_version_answer_and_exit_0(args: list[str], tmp_path: Path) -> None:
    result = invoke(args, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_mistyped_config_dir_creates_nothing_and_a_taken_probe_port_touches_no_store(
    tmp_path: Path, taken_port: int
) -> None:
    (tmp_path / "config" / "upstreams" / "gloo-system").mkdir(parents=True)
    (tmp_path / "config" / "upstreams" / "gloo-system" / UPSTREAM.name).write_text(UPSTREAM.read_text())
    before = sorted(tmp_path.rglob("*"))
    mistyped = invoke(["run", "--config-dir", str(tmp_path / "confg"), "--probe-address", "127.0.0.1:0"], tmp_path)
    taken = invoke(
        ["run", "--config-dir", str(tmp_path / "config"), "--probe-address", f"127.0.0.1:{taken_port}"], tmp_path
    )
    assert (mistyped.returncode, taken.returncode) == (2, 2), mistyped.stderr + taken.stderr
    assert sorted(tmp_path.rglob("*")) == before  # no new tree, no Proxy file, no proxies/ folder


def test_debug_log_level_adds_the_traceback_behind_the_error(tmp_path: Path) -> None:
    result = invoke(["status", "--config-dir", str(tmp_path / "nonexistent"), "--log-level", "debug"], tmp_path)
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1] == f"error: --config-dir {tmp_path / 'nonexistent'}: no such directory"


def test_a_second_controller_on_the_same_ipv6_probe_address_is_refused_and_the_first_keeps_serving(
    tmp_path: Path,
) -> None:
    """Two controllers on one machine, the second started by mistake with the first one's probe address."""
    (tmp_path / "config" / "upstreams").mkdir(parents=True)
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
        probe.bind(("::1", 0))
        port = int(probe.getsockname()[1])
    address = f"[::1]:{port}"
    args = [SCRIPT, "run", "--config-dir", str(tmp_path / "config"), "--probe-address", address]
    first = ManagedProcess("first controller", args, tmp_path / "first.log", env=isolated_env(tmp_path))

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://{address}/healthz", timeout=1) as response:
                return int(response.status) == 200
        except OSError:
            return False

    with running(first, healthy, timeout=30):
        second = invoke(args[1:], tmp_path)
        assert second.returncode == 2, second.stderr
        assert second.stderr == f"error: --probe-address {address}: address already in use\n"
        assert first.running()
        assert healthy()


def test_run_logs_the_configurations_advisories_when_it_starts(tmp_path: Path) -> None:
    (tmp_path / "config" / "upstreams").mkdir(parents=True)
    (tmp_path / "config.yaml").write_text("proxies: [{namespace: default}]\n")
    args = [SCRIPT, "run", "--config-dir", str(tmp_path / "config"), "--config", str(tmp_path / "config.yaml")]
    log = tmp_path / "run.log"
    process = ManagedProcess("controller", [*args, "--probe-address", ""], log, env=isolated_env(tmp_path))
    proxy_file = tmp_path / "config" / "proxies" / "default" / "my-cool-proxy.yaml"
    with running(process, proxy_file.exists, timeout=30):
        text = log.read_text()
    assert (
        "WARNING proxycontroller.cli: Proxy default/my-cool-proxy is in namespace default, but Gloo (glooNamespace"
        " gloo-system) reads Proxies only from its write namespace" in text
    )
