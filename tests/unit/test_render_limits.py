"""`render` under hostile input: alias bombs, endless and oversized inputs end in one line naming the input and
the limit, quickly and within bounded memory. Run as real processes, with a timeout and an address-space cap, so
a regression shows as a failure rather than as a machine that hangs or swaps."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from proxycontroller.model.limits import DEFAULT_LIMITS
from tests.conftest import REPO

EXAMPLES = REPO / "examples" / "upstreams"
PETSTORE = EXAMPLES / "gloo-system" / "default-petstore-8080.yaml"
ADDRESS_SPACE_CAP = 2 * 1024**3  # far above what render needs for these inputs, far below a runaway expansion


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """Each level lists the previous one `width` times: a few hundred bytes, width**levels nodes as a tree."""
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def render(*args: str, stdin: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP))

    return subprocess.run(
        [sys.executable, "-m", "proxycontroller.cli.main", "render", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=cap_memory,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_an_alias_bomb_in_a_file_is_refused_naming_the_file_and_the_limit(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    assert bomb.stat().st_size < 1000
    line = one_error_line(render("-f", str(bomb), timeout=30))
    assert str(bomb) in line
    assert "limits.maxAliasNodes" in line


def test_an_alias_bomb_inside_an_upstream_is_refused(tmp_path: Path) -> None:
    """The same, hidden in a field of an otherwise valid Upstream among good ones."""
    (tmp_path / "good.yaml").write_text((PETSTORE).read_text())
    nested = alias_bomb().replace("\n", "\n    ")
    (tmp_path / "evil.yaml").write_text(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata:\n  name: evil\n  namespace: gloo-system\n"
        f"  annotations: {{}}\nspec:\n  static:\n    hosts: [{{addr: a, port: 1}}]\n  extra:\n    {nested}"
    )
    line = one_error_line(render("-f", str(tmp_path), timeout=30))
    assert "evil.yaml" in line
    assert "limits.maxAliasNodes" in line


def test_a_document_that_contains_itself_is_refused(tmp_path: Path) -> None:
    loop = tmp_path / "loop.yaml"
    loop.write_text("metadata: &m {name: x, namespace: gloo-system, self: *m}\nstatic: {hosts: []}\n")
    line = one_error_line(render("-f", str(loop), timeout=30))
    assert str(loop) in line
    assert "contain itself" in line


def test_aliases_within_the_limit_are_read(tmp_path: Path) -> None:
    """Anchors people write by hand (a shared block) are fine: the bound is on expansion, not on aliases."""
    shared = tmp_path / "shared.yaml"
    shared.write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: gloo.solo.io/v1\n  kind: Upstream\n  metadata: {name: one, namespace: gloo-system}\n"
        "  spec: &spec\n    static:\n      hosts: [{addr: petstore, port: 8080}]\n"
        "- apiVersion: gloo.solo.io/v1\n  kind: Upstream\n  metadata: {name: two, namespace: gloo-system}\n"
        "  spec: *spec\n"
    )
    result = render("-f", str(shared))
    assert result.returncode == 0, result.stderr
    assert "name: one" in result.stdout
    assert "name: two" in result.stdout


def test_dev_zero_ends_at_the_input_limit_not_at_the_memory_limit(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("limits:\n  maxInputBytes: 1048576\n")
    line = one_error_line(render("--config", str(config), "-f", "/dev/zero", timeout=30))
    assert "/dev/zero" in line
    assert "1048576" in line
    assert "limits.maxInputBytes" in line


def test_stdin_is_bounded_too(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("limits:\n  maxInputBytes: 4096\n")
    line = one_error_line(render("--config", str(config), "-f", "-", stdin=b"# padding\n" * 1000))
    assert "<stdin>" in line
    assert "4096" in line


def test_an_input_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    """The limit is not off by one either way: the limit's size renders, one byte more does not."""
    upstream = tmp_path / "petstore.yaml"
    upstream.write_bytes(PETSTORE.read_bytes() + b"# padding\n" * 200)
    config = tmp_path / "config.yaml"
    config.write_text(f"limits:\n  maxInputBytes: {upstream.stat().st_size}\n")
    result = render("--config", str(config), "-f", str(upstream))
    assert result.returncode == 0, result.stderr
    config.write_text(f"limits:\n  maxInputBytes: {upstream.stat().st_size - 1}\n")
    assert "limits.maxInputBytes" in one_error_line(render("--config", str(config), "-f", str(upstream)))


def test_the_default_limits_are_generous_for_a_cluster_sized_stream() -> None:
    """50k upstreams as `kubectl get -o yaml` prints them are ~30 MB (BENCHMARKS.md): far inside the default."""
    assert DEFAULT_LIMITS.max_input_bytes >= 10 * 30 * 1024 * 1024
    assert DEFAULT_LIMITS.max_file_bytes >= 4 * 12 * 1024 * 1024  # a 50k-host Proxy file is ~12 MB


@pytest.mark.parametrize(
    ("limits", "key"),
    [("maxInputBytes: 10", "limits.maxInputBytes"), ("maxAliasNodes: -1", "limits.maxAliasNodes")],
)
def test_a_nonsensical_limit_is_a_configuration_error(tmp_path: Path, limits: str, key: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"limits:\n  {limits}\n")
    line = one_error_line(render("--config", str(config), "-f", str(EXAMPLES)))
    assert str(config) in line
    assert key in line
