"""Gloo's directory layout under hostile or mistaken input: files too large, alias bombs, JSON nested past any
parser's stack, and a managed Proxy file emptied, garbled, edited or taken over by someone else.

First the store itself (a real filesystem, real inotify), then `proxycontroller run` as a user runs it, as a
process: its probes, its log, its memory (VmHWM from /proc) and how fast SIGTERM stops it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxycontroller.model.documents import dump_yaml
from proxycontroller.model.encoding import to_flat
from proxycontroller.model.limits import InputLimits
from proxycontroller.model.resources import ObjectKey, Upstream
from proxycontroller.store.directory import DirectoryClient
from proxycontroller.store.directory.reader import read_within
from proxycontroller.store.errors import ConflictError, UnreadableError
from proxycontroller.testing.servers.controller import controller_process
from proxycontroller.testing.servers.processes import ManagedProcess
from proxycontroller.translate.translator import managed_labels
from tests.store.support import watching
from tests.unit.directory_mode import NAMESPACE, get, proxy_path, upstream_path, wait_for, write_upstream
from tests.unit.factories import kube_upstream
from tests.unit.test_directory_store import SLOW, names, port_in, warnings_about, write_upstream_file

KiB, MiB = 1024, 1024 * 1024
SMALL = InputLimits(max_file_bytes=64 * KiB, max_alias_nodes=1000)


def alias_bomb(name: str, levels: int = 9) -> str:
    """A few hundred bytes that, read as a tree, hold 10**levels nodes: the billion laughs."""
    lines = [f"metadata: {{name: {name}, namespace: {NAMESPACE}}}", "l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def put(path: Path, data: bytes) -> None:
    """Whole at once (a temp file renamed into place), as a careful writer would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.test.tmp")
    temp.write_bytes(data)
    os.replace(temp, path)


def sparse(path: Path, size: int) -> None:
    """A file of `size` bytes that takes no disk: reading it whole would still cost `size` bytes of memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        file.truncate(size)


def at_version(resource: Upstream, version: str) -> Upstream:
    return resource.model_copy(update={"metadata": resource.metadata.model_copy(update={"resource_version": version})})


@pytest.fixture
def client(tmp_path: Path) -> DirectoryClient[Upstream]:
    return DirectoryClient(Upstream, tmp_path / "config", resync_period=SLOW, limits=SMALL)


@pytest.fixture(autouse=True)
def _store_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="proxycontroller.store")


# --- the store ----------------------------------------------------------------------------------------------------


def test_a_read_stops_one_byte_past_the_limit_even_when_the_file_grew_after_its_stat() -> None:
    assert read_within(io.BytesIO(b"x" * 100), 100, 100) == b"x" * 100  # at the limit: read
    assert read_within(io.BytesIO(b"x" * 101), 101, 100) is None  # over it by its stat: not read at all
    grown = io.BytesIO(b"x" * 10_000)
    assert read_within(grown, 10, 100) is None  # the stat said 10, it grew past the limit since
    assert grown.tell() == 101  # and no more than the limit and one byte was read
    assert read_within(io.BytesIO(b"x" * 50), 10, 100) == b"x" * 50  # grew, but within the limit


async def test_a_file_over_the_byte_limit_is_reported_naming_the_limit_and_never_read(
    client: DirectoryClient[Upstream], caplog: pytest.LogCaptureFixture
) -> None:
    write_upstream_file(client.root, "good", 1)
    huge = upstream_path(client.root, "huge")
    sparse(huge, 256 * MiB)
    limit_said = "larger than the limit of 65536 bytes (limits.maxFileBytes)"

    tracemalloc.start()
    try:
        async with watching(client, None) as w:
            assert names(w) == {f"{NAMESPACE}/good"}
            (warning,) = warnings_about(caplog, huge)
            assert limit_said in warning
            with pytest.raises(UnreadableError, match="huge") as info:
                await client.get(ObjectKey(NAMESPACE, "huge"))
            peak = tracemalloc.get_traced_memory()[1]
            # Other changes, and the same file found again, are no news.
            write_upstream_file(client.root, "later", 2)
            await w.eventually(lambda: port_in(w, "later") == 2, "a file written after it")
            assert len(warnings_about(caplog, huge)) == 1
            # Cut down to size, it is read.
            huge.unlink()
            write_upstream_file(client.root, "huge", 3)
            await w.eventually(lambda: port_in(w, "huge") == 3, "the file within the limit")
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB, f"{peak} bytes allocated: the file was read"
    assert limit_said in str(info.value)
    # Its labels were not read: whoever it belongs to cannot be told, so nobody may take it for ownerless.
    assert info.value.labels is None
    assert not info.value.no_metadata


async def test_a_file_exactly_at_the_limit_is_read_and_one_byte_more_is_not(
    client: DirectoryClient[Upstream],
) -> None:
    path = upstream_path(client.root, "edge")
    text = dump_yaml(to_flat(kube_upstream("edge", port=7)))
    padded = text + "#" * (SMALL.max_file_bytes - len(text) - 1) + "\n"
    put(path, padded.encode())
    assert path.stat().st_size == SMALL.max_file_bytes
    read = await client.get(ObjectKey(NAMESPACE, "edge"))
    assert read is not None
    put(path, padded.encode() + b"\n")
    with pytest.raises(UnreadableError, match=r"limits\.maxFileBytes"):
        await client.get(ObjectKey(NAMESPACE, "edge"))


async def test_an_alias_bomb_is_reported_naming_the_limit_and_the_watch_goes_on(
    client: DirectoryClient[Upstream], caplog: pytest.LogCaptureFixture
) -> None:
    write_upstream_file(client.root, "good", 1)
    async with watching(client, None) as w:
        bomb = upstream_path(client.root, "bomb")
        put(bomb, alias_bomb("bomb").encode())
        await w.eventually(lambda: len(warnings_about(caplog, bomb)) == 1, "a warning naming the file", within=5)
        assert "beyond the limit of 1000 added nodes (limits.maxAliasNodes)" in warnings_about(caplog, bomb)[0]
        write_upstream_file(client.root, "after", 2)
        await w.eventually(lambda: port_in(w, "after") == 2, "a file written after the bomb", within=5)
        assert names(w) == {f"{NAMESPACE}/good", f"{NAMESPACE}/after"}
    with pytest.raises(UnreadableError, match=r"limits\.maxAliasNodes") as info:
        await client.get(ObjectKey(NAMESPACE, "bomb"))
    assert info.value.labels is None  # not expanded, so not read: its owner cannot be told
    assert not info.value.no_metadata


async def test_json_nested_past_the_parsers_stack_is_reported_and_the_watch_goes_on(
    client: DirectoryClient[Upstream], caplog: pytest.LogCaptureFixture
) -> None:
    write_upstream_file(client.root, "good", 1)
    deep = upstream_path(client.root, "deep")
    put(
        deep,
        b'{"metadata": {"name": "deep", "namespace": "gloo-system"}, "static": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    )
    async with watching(client, None) as w:
        assert names(w) == {f"{NAMESPACE}/good"}
        assert "nested too deeply" in warnings_about(caplog, deep)[0]
        write_upstream_file(client.root, "after", 2)
        await w.eventually(lambda: port_in(w, "after") == 2, "a file written after it")


@pytest.mark.parametrize(
    ("content", "labels", "no_metadata"),
    [
        (b"", None, True),
        (b"\x00\xff\xfe", None, True),
        (b"metadata: {name: x, namespace: gloo-system, labels: [", None, True),
        (b"just a sentence\n", None, True),
        (b"listeners: []\n", None, True),
        (b"metadata: {name: x, namespace: gloo-system}\nstatic: 1\n", {}, False),
        (b"metadata: {name: x, namespace: gloo-system, labels: {team: a}}\nstatic: 1\n", {"team": "a"}, False),
    ],
    ids=["empty", "binary", "broken-yaml", "a-scalar", "no-metadata", "no-labels", "labels"],
)
async def test_an_unreadable_file_tells_whether_anything_in_it_names_an_owner(
    client: DirectoryClient[Upstream], content: bytes, labels: dict[str, str] | None, no_metadata: bool
) -> None:
    put(upstream_path(client.root, "x"), content)
    with pytest.raises(UnreadableError) as info:
        await client.get(ObjectKey(NAMESPACE, "x"))
    assert info.value.labels == labels
    assert info.value.no_metadata is no_metadata


async def test_writing_over_a_file_too_large_to_read_goes_by_its_stat(client: DirectoryClient[Upstream]) -> None:
    key = ObjectKey(NAMESPACE, "huge")
    path = upstream_path(client.root, "huge")
    sparse(path, 1 * MiB)
    with pytest.raises(UnreadableError) as info:
        await client.get(key)
    os.truncate(path, MiB + 1)  # grown by someone since
    wanted = kube_upstream("huge", port=4)
    with pytest.raises(ConflictError, match="huge"):
        await client.replace(at_version(wanted, info.value.version))
    with pytest.raises(UnreadableError) as again:
        await client.get(key)
    written = await client.replace(at_version(wanted, again.value.version))
    assert written.metadata.resource_version == "2"
    read = await client.get(key)
    assert read is not None
    assert read.spec.kube is not None
    assert read.spec.kube.service_port == 4


async def test_replace_never_reads_a_file_that_grew_over_the_limit(client: DirectoryClient[Upstream]) -> None:
    created = await client.create(kube_upstream("svc", port=1))
    sparse(upstream_path(client.root, "svc"), 256 * MiB)  # someone else's write, in place
    tracemalloc.start()
    try:
        with pytest.raises(ConflictError, match=r"limits\.maxFileBytes"):
            await client.replace(created)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB, f"{peak} bytes allocated: the file was read"


# --- the running controller -----------------------------------------------------------------------------------------


class Running:
    """`proxycontroller run --config-dir` as a process, and what a test looks at: the Proxy file, the probes, the
    log, the process's memory."""

    def __init__(self, tmp_path: Path, config: dict[str, Any] | None = None) -> None:
        self.config_dir = tmp_path / "gloo"
        self.work_dir = tmp_path / "controller"
        self.config = config or {}
        self.proxy = proxy_path(self.config_dir)

    @property
    def log(self) -> Path:
        return self.work_dir / "controller.log"

    def lines(self, *needles: str) -> list[str]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if all(needle in line for needle in needles)]

    @contextlib.contextmanager
    def started(self) -> Iterator[tuple[ManagedProcess, int]]:
        """Running and ready (/readyz); stopped again at the end, also when the test fails."""
        with controller_process(self.work_dir, ["--config-dir", str(self.config_dir)], self.config) as started:
            yield started

    def routed(self) -> list[str] | None:
        document = proxy_document(self.proxy)
        if document is None:
            return None
        hosts = document["listeners"][0]["httpListener"].get("virtualHosts") or []
        return [host["name"] for host in hosts]


def proxy_document(path: Path) -> dict[str, Any] | None:
    """The Proxy file as a document, without what changes on every write (its resourceVersion); None if it is
    missing or not a Proxy."""
    try:
        document = yaml.safe_load(path.read_bytes())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("metadata"), dict):
        return None
    document["metadata"].pop("resourceVersion", None)
    return document


def statusz(port: int) -> dict[str, Any]:
    status, body = get(f"http://127.0.0.1:{port}/statusz")
    assert status == 200, status
    detail: dict[str, Any] = json.loads(body)
    return detail


def peak_rss_bytes(pid: int) -> int:
    """The process's resident high-water mark (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def stops_promptly_on_sigterm(process: ManagedProcess) -> None:
    started = time.monotonic()
    process.stop()  # SIGTERM, and SIGKILL only after a 10 s grace
    assert not process.running()
    assert time.monotonic() - started < 5, "SIGTERM did not stop it: it had to be killed"


OURS = managed_labels("proxycontroller")
RESTORED = "restored: it was unreadable"


def test_a_managed_proxy_file_emptied_garbled_or_edited_is_restored(tmp_path: Path) -> None:
    run = Running(tmp_path)
    write_upstream(run.config_dir, "a")
    with run.started() as (process, port):
        wait_for(lambda: run.routed() == ["a"])
        good = proxy_document(run.proxy)
        assert good is not None
        assert good["metadata"]["labels"] == OURS

        os.truncate(run.proxy, 0)  # what Gloo 1.22.1 can leave when it panics writing a status
        started = time.monotonic()
        wait_for(lambda: proxy_document(run.proxy) == good, timeout=10)
        emptied_after = time.monotonic() - started

        put(run.proxy, b"\x00\xff garbage {{{ [")
        started = time.monotonic()
        wait_for(lambda: proxy_document(run.proxy) == good, timeout=10)
        garbled_after = time.monotonic() - started

        # Drift, which was repaired before: ours, readable, its spec changed by someone.
        edited = {**good, "listeners": []}
        put(run.proxy, yaml.safe_dump(edited).encode())
        wait_for(lambda: proxy_document(run.proxy) == good, timeout=10)

        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        assert statusz(port)["consecutive_failures"] == 0
        stops_promptly_on_sigterm(process)
    assert emptied_after < 5
    assert garbled_after < 5
    said = run.lines("WARNING", f"Proxy {NAMESPACE}/my-cool-proxy {RESTORED}")
    assert len(said) == 2, said
    assert f"{run.proxy}: empty file" in said[0]
    assert f"{run.proxy}: not UTF-8" in said[1]
    assert not run.lines("Traceback")


def test_a_proxy_file_emptied_while_the_controller_is_down_is_restored_at_start(tmp_path: Path) -> None:
    run = Running(tmp_path)
    write_upstream(run.config_dir, "a")
    with run.started():
        wait_for(lambda: run.routed() == ["a"])
    good = proxy_document(run.proxy)
    os.truncate(run.proxy, 0)

    with run.started() as (process, port):
        wait_for(lambda: proxy_document(run.proxy) == good, timeout=10)
        assert statusz(port)["consecutive_failures"] == 0
        stops_promptly_on_sigterm(process)
    assert len(run.lines(f"Proxy {NAMESPACE}/my-cool-proxy {RESTORED}", "empty file")) == 1


FOREIGN = {"metadata": {"name": "my-cool-proxy", "namespace": NAMESPACE, "labels": {"owner": "team-x"}}}


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (yaml.safe_dump({**FOREIGN, "listeners": []}).encode(), "is not managed by this controller"),
        (
            # Too large to read, so whether it carries our labels cannot be told (though it does).
            yaml.safe_dump({"metadata": {**FOREIGN["metadata"], "labels": OURS}, "listeners": []}).encode()
            + b"#" * (2 * MiB)
            + b"\n",
            "larger than the limit of 1048576 bytes (limits.maxFileBytes)): whether this controller manages it",
        ),
    ],
    ids=["without-our-labels", "too-large-to-tell"],
)
def test_a_proxy_file_that_is_not_ours_is_left_untouched_and_said_once(
    tmp_path: Path, content: bytes, said: str
) -> None:
    run = Running(tmp_path, {"limits": {"maxFileBytes": MiB}})
    write_upstream(run.config_dir, "a")
    with run.started() as (process, port):
        wait_for(lambda: run.routed() == ["a"])
        put(run.proxy, content)
        wait_for(lambda: len(run.lines("ERROR", f"Proxy {NAMESPACE}/my-cool-proxy exists")) == 1, timeout=10)
        passes = statusz(port)["passes"]
        write_upstream(run.config_dir, "b")  # another pass that finds it in the way
        wait_for(lambda: statusz(port)["passes"] > passes)
        assert run.proxy.read_bytes() == content
        stops_promptly_on_sigterm(process)
    (error,) = run.lines("ERROR", f"Proxy {NAMESPACE}/my-cool-proxy exists")
    assert said in error
    assert "leaving it untouched" in error
    assert not run.lines(RESTORED)


def test_an_alias_bomb_in_an_upstream_file_is_reported_and_the_rest_routed(tmp_path: Path) -> None:
    run = Running(tmp_path)
    write_upstream(run.config_dir, "a")
    with run.started() as (process, port):
        wait_for(lambda: run.routed() == ["a"])
        bomb = upstream_path(run.config_dir, "bomb")
        put(bomb, alias_bomb("bomb").encode())
        wait_for(lambda: len(run.lines("WARNING", str(bomb), "limits.maxAliasNodes")) == 1, timeout=10)
        write_upstream(run.config_dir, "c")
        deadline = time.monotonic() + 10
        while run.routed() != ["a", "c"]:
            assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200, "/healthz stopped answering"
            assert time.monotonic() < deadline, f"not routed in time: {run.routed()}"
            time.sleep(0.05)
        stops_promptly_on_sigterm(process)
    assert not run.lines("Traceback")


@pytest.mark.parametrize(
    ("config", "size", "limit"),
    [({"limits": {"maxFileBytes": MiB}}, 64 * MiB, MiB), ({}, 200 * 1000 * 1000, 64 * MiB)],
    ids=["configured-limit", "default-limit"],
)
def test_an_upstream_file_over_the_byte_limit_costs_no_memory_and_the_rest_is_routed(
    tmp_path: Path, config: dict[str, Any], size: int, limit: int
) -> None:
    run = Running(tmp_path, config)
    write_upstream(run.config_dir, "a")
    huge = upstream_path(run.config_dir, "huge")
    with run.started() as (process, _):
        wait_for(lambda: run.routed() == ["a"])
        before = peak_rss_bytes(process.pid)
        write_large_upstream(huge, size)
        wait_for(lambda: len(run.lines("WARNING", str(huge), f"larger than the limit of {limit} bytes")) == 1)
        write_upstream(run.config_dir, "c")
        wait_for(lambda: run.routed() == ["a", "c"])
        after = peak_rss_bytes(process.pid)
        stops_promptly_on_sigterm(process)
    huge.unlink()
    print(f"VmHWM before {before / MiB:.1f} MiB, after a {size / MiB:.0f} MiB file {after / MiB:.1f} MiB")
    assert after - before < 16 * MiB, f"peak RSS grew by {(after - before) / MiB:.0f} MiB"
    assert "limits.maxFileBytes" in run.lines("WARNING", str(huge))[0]


def write_large_upstream(path: Path, size: int) -> None:
    """A real upstream file of `size` bytes (a long list of hosts), written in chunks and renamed into place."""
    head = f"metadata: {{name: {path.stem}, namespace: {NAMESPACE}}}\nstatic:\n  hosts:\n".encode()
    line = b"  - {addr: 10.0.0.1, port: 8080}\n"
    chunk = line * (MiB // len(line))
    temp = path.with_name(f".{path.name}.test.tmp")
    with open(temp, "wb") as file:
        file.write(head)
        written = len(head)
        while written + len(chunk) <= size:
            file.write(chunk)
            written += len(chunk)
        file.write(line * ((size - written) // len(line)))
    os.replace(temp, path)
