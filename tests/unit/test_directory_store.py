"""The directory store on a real filesystem with real inotify (watchfiles): no mocks.

Waits poll with a timeout (`eventually`) rather than sleeping a fixed time, so they are as fast as the watch and
fail with a message instead of flaking.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
import shutil
import stat
import threading
from pathlib import Path

import pytest

from proxycontroller.model.canonical import CanonicalSpec
from proxycontroller.model.documents import dump_yaml, load_yaml
from proxycontroller.model.encoding import COMPRESS_ANNOTATION, to_flat
from proxycontroller.model.limits import DEFAULT_LIMITS
from proxycontroller.model.resources import ObjectKey, Proxy, StoredProxy, Upstream
from proxycontroller.store.base import ResourceClient
from proxycontroller.store.directory import DirectoryClient, next_resource_version
from proxycontroller.store.directory.codec import JSON_ABOVE_BYTES, decode, encode
from proxycontroller.store.errors import AlreadyExistsError, ConflictError, NotFoundError, StoreError
from tests.store.support import Watching, port_of, watching, with_labels, with_port
from tests.unit.factories import kube_upstream

NS = "gloo-system"
LOGGER = "proxycontroller.store.directory"
SLOW = 3600.0  # a resync period that never comes during a test: what changes must come from the events


def names(w: Watching) -> set[str]:
    """The watched cache's objects as `namespace/name`."""
    return {str(upstream.key) for upstream in w.cache.items()}


def has_port(w: Watching, name: str, expected: int) -> bool:
    return port_in(w, name) == expected


def port_in(w: Watching, name: str, namespace: str = NS) -> int | None:
    """The port of the watched cache's upstream `name`, None if it holds none."""
    return w.port(ObjectKey(namespace, name))


def write_upstream_file(root: Path, name: str, port: int, namespace: str = NS, suffix: str = ".yaml") -> Path:
    """A file as someone else (a person, Gloo) would put it there: plainly, not through the client."""
    path = root / "upstreams" / namespace / f"{name}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_yaml(to_flat(kube_upstream(name, namespace, port))))
    return path


def warnings_about(caplog: pytest.LogCaptureFixture, path: Path) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and str(path) in r.getMessage()]


@pytest.fixture
def client(tmp_path: Path) -> DirectoryClient[Upstream]:
    return DirectoryClient(Upstream, tmp_path / "config", resync_period=SLOW)


@pytest.fixture(autouse=True)
def _store_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)


def test_it_is_a_resource_client(client: DirectoryClient[Upstream]) -> None:
    as_protocol: ResourceClient[Upstream] = client  # checked by mypy: the reconciler takes any ResourceClient
    assert as_protocol.kind is Upstream


# --- resourceVersion ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (None, "2"),  # solo-kit: Atoi("") fails, counts as 1
        ("", "2"),
        ("1", "2"),
        ("41", "42"),
        ("+5", "6"),  # Atoi accepts a sign
        ("-3", "-2"),
        ("abc", "2"),
        ("1_0", "2"),  # Python's int() would take it, Atoi does not
        (" 7", "2"),
        (str(2**63), "2"),  # out of int64: Atoi fails
    ],
)
def test_resource_version_increments_like_solo_kits_file_client(current: str | None, expected: str) -> None:
    assert next_resource_version(current) == expected


# --- create, get, replace, delete ----------------------------------------------------------------------------------


async def test_create_get_replace_delete(client: DirectoryClient[Upstream]) -> None:
    key = ObjectKey(NS, "petstore")
    assert await client.get(key) is None

    created = await client.create(kube_upstream("petstore", port=8080))
    assert created.metadata.resource_version == "2"
    path = client.path_for(key)
    assert path == client.root.absolute() / "upstreams" / NS / "petstore.yaml"
    on_disk = load_yaml(path.read_text())
    assert on_disk["metadata"] == {"name": "petstore", "namespace": NS, "resourceVersion": "2"}
    assert on_disk["kube"]["servicePort"] == 8080  # Gloo's flat form: spec fields at the top level
    assert await client.get(key) == created

    with pytest.raises(AlreadyExistsError):
        await client.create(kube_upstream("petstore"))

    changed = with_port(created, 9090)
    replaced = await client.replace(changed)
    assert replaced.metadata.resource_version == "3"
    got = await client.get(key)
    assert got is not None
    assert got.spec.kube is not None
    assert got.spec.kube.service_port == 9090

    with pytest.raises(ConflictError, match="changed since it was read"):
        await client.replace(changed)  # still carries "2"

    await client.delete(key)
    assert await client.get(key) is None
    assert not path.exists()
    await client.delete(key)  # already gone: fine
    with pytest.raises(NotFoundError):
        await client.replace(replaced)


async def test_replace_detects_a_write_by_someone_else(client: DirectoryClient[Upstream]) -> None:
    ours = await client.create(kube_upstream("svc"))
    path = client.path_for(ours.key)
    document = load_yaml(path.read_text())
    document["metadata"]["resourceVersion"] = "3"  # as Gloo's file client would after writing a status
    path.write_text(dump_yaml(document))
    with pytest.raises(ConflictError, match="'2' given, '3' in"):
        await client.replace(ours)


async def test_replace_of_a_file_unreadable_now_is_a_conflict(client: DirectoryClient[Upstream]) -> None:
    ours = await client.create(kube_upstream("svc"))
    client.path_for(ours.key).write_text("metadata: {name: svc, namespace: gloo-sys")  # someone mid-write
    with pytest.raises(ConflictError, match="not readable now"):
        await client.replace(ours)


async def test_a_hand_written_file_without_a_version_can_be_replaced(
    client: DirectoryClient[Upstream], gloo_petstore_upstream_file: Path
) -> None:
    target = client.directory / NS / "petstore.yaml"
    target.parent.mkdir(parents=True)
    shutil.copy(gloo_petstore_upstream_file, target)  # Gloo's own sample: no resourceVersion in it
    read = await client.get(ObjectKey(NS, "petstore"))
    assert read is not None
    assert read.metadata.resource_version is None
    replaced = await client.replace(read)
    assert replaced.metadata.resource_version == "2"  # what solo-kit would write over it
    assert load_yaml(target.read_text())["static"]["hosts"] == [{"addr": "petstore", "port": 8080}]


async def test_status_in_the_file_is_kept_across_replace(client: DirectoryClient[Upstream]) -> None:
    path = write_upstream_file(client.root, "svc", 8080)
    document = load_yaml(path.read_text())
    document["metadata"]["resourceVersion"] = "7"
    document["namespacedStatuses"] = {"statuses": {NS: {"state": "Accepted", "reportedBy": "gloo"}}}
    path.write_text(dump_yaml(document))  # as Gloo leaves it after reporting

    read = await client.get(ObjectKey(NS, "svc"))
    assert read is not None
    await client.replace(with_port(read, 9090))

    on_disk = load_yaml(path.read_text())
    assert on_disk["namespacedStatuses"] == {"statuses": {NS: {"state": "Accepted", "reportedBy": "gloo"}}}
    assert on_disk["metadata"]["resourceVersion"] == "8"
    assert on_disk["kube"]["servicePort"] == 9090


async def test_writes_are_readable_by_others_and_leave_no_temp_files(client: DirectoryClient[Upstream]) -> None:
    created = await client.create(kube_upstream("svc"))
    await client.replace(created)
    namespace_dir = client.directory / NS
    assert sorted(p.name for p in namespace_dir.iterdir()) == ["svc.yaml"]
    assert stat.S_IMODE(os.stat(namespace_dir / "svc.yaml").st_mode) == 0o644  # Gloo may run as another user


async def test_two_concurrent_creates_of_one_name_one_wins(client: DirectoryClient[Upstream]) -> None:
    results = await asyncio.gather(
        client.create(kube_upstream("svc", port=1)), client.create(kube_upstream("svc", port=2)), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["AlreadyExistsError", "Upstream"]


async def test_keys_that_do_not_name_a_file_in_the_layout_are_refused(client: DirectoryClient[Upstream]) -> None:
    with pytest.raises(StoreError, match="namespace ''"):
        await client.create(kube_upstream("svc", namespace=""))
    with pytest.raises(StoreError, match=re.escape("namespace '..'")):
        await client.delete(ObjectKey("..", "x"))
    with pytest.raises(StoreError, match="name 'a/b'"):
        await client.get(ObjectKey(NS, "a/b"))


async def test_proxies_are_written_uncompressed_because_gloos_file_client_cannot_decompress(tmp_path: Path) -> None:
    proxies = DirectoryClient(Proxy, tmp_path, resync_period=SLOW)
    proxy = Proxy.model_validate(
        {
            "metadata": {"name": "gateway-proxy", "namespace": NS, "annotations": {COMPRESS_ANNOTATION: "true"}},
            "spec": {"listeners": [{"name": "http", "bindAddress": "::", "bindPort": 8080}]},
        }
    )
    created = await proxies.create(proxy)
    on_disk = load_yaml((tmp_path / "proxies" / NS / "gateway-proxy.yaml").read_text())
    assert "compressedSpec" not in on_disk
    assert on_disk["listeners"][0]["bindPort"] == 8080
    assert await proxies.get(proxy.key) == created


# --- .yml ----------------------------------------------------------------------------------------------------------


async def test_yml_files_are_read_and_rewritten_as_yaml(client: DirectoryClient[Upstream]) -> None:
    yml = write_upstream_file(client.root, "legacy", 8080, suffix=".yml")
    key = ObjectKey(NS, "legacy")
    read = await client.get(key)
    assert read is not None
    async with watching(client, None) as w:
        await w.eventually(lambda: port_in(w, "legacy") == 8080, "the .yml file in the cache")

    with pytest.raises(AlreadyExistsError):
        await client.create(kube_upstream("legacy"))
    await client.replace(read)
    assert not yml.exists()
    assert client.path_for(key).exists()  # the suffix Gloo's own writes use

    write_upstream_file(client.root, "legacy", 8080, suffix=".yml")
    await client.delete(key)
    assert list((client.directory / NS).iterdir()) == []  # both suffixes gone


async def test_when_both_suffixes_exist_yaml_wins_and_yml_is_reported(
    client: DirectoryClient[Upstream], caplog: pytest.LogCaptureFixture
) -> None:
    write_upstream_file(client.root, "svc", 1111)
    yml = write_upstream_file(client.root, "svc", 2222, suffix=".yml")
    got = await client.get(ObjectKey(NS, "svc"))
    assert got is not None
    assert got.spec.kube is not None
    assert got.spec.kube.service_port == 1111
    async with watching(client, None) as w:
        await w.eventually(lambda: port_in(w, "svc") == 1111, "the .yaml version")
        assert any("names the same object" in m for m in warnings_about(caplog, yml))


# --- atomic writes -------------------------------------------------------------------------------------------------


def big_upstream(hosts: int) -> Upstream:
    """A large file, so that a non-atomic write would be caught half-done by a reader."""
    return Upstream.model_validate(
        {
            "metadata": {"name": "big", "namespace": NS},
            "spec": {
                "static": {"hosts": [{"addr": f"host-{i}.example.com", "port": 8000 + i % 1000} for i in range(hosts)]}
            },
            "status": {"statuses": {NS: {"state": 1, "reason": "end-of-file", "reportedBy": "gloo"}}},
        }
    )


SIZES = (4_000, 7)  # hosts: the file alternates between ~190 kB and a few hundred bytes


class Reader(threading.Thread):
    """Reads a file in a tight loop, as Gloo's lister or a person's `cat` would, and notes every bad read."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.stop = threading.Event()
        self.reads = 0
        self.bad: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                data = b""
            self.reads += 1
            # Cheap checks on every read (the status comes last in the flat form), a full parse on some.
            if not data.startswith((b"metadata:", b'{"metadata":')) or b"end-of-file" not in data[-200:]:
                self.bad.append(f"read {self.reads}: {len(data)} bytes, ending {data[-60:]!r}")
            elif self.reads % 50 == 0:
                hosts = len(load_yaml(data.decode())["static"]["hosts"])
                if hosts not in SIZES:
                    self.bad.append(f"read {self.reads}: {hosts} hosts")

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.to_thread(self.join)


async def test_a_concurrent_reader_never_sees_a_partial_file(client: DirectoryClient[Upstream]) -> None:
    current = await client.create(big_upstream(SIZES[0]))
    reader = Reader(client.path_for(current.key))
    reader.start()
    try:
        for i in range(1, 11):
            current = await client.replace(big_upstream(SIZES[i % 2]).model_copy(update={"metadata": current.metadata}))
    finally:
        await reader.finish()
    assert reader.bad == []
    assert reader.reads > 100, "the reader hardly ran: the test proves nothing"
    assert current.metadata.resource_version == "12"
    assert sorted(p.name for p in reader.path.parent.iterdir()) == ["big.yaml"]


async def test_the_reader_does_catch_a_write_in_place(tmp_path: Path) -> None:
    """The control for the test above: the way solo-kit writes (truncate, then write) is seen half-done."""
    path = tmp_path / "big.yaml"
    encodings = [dump_yaml(to_flat(big_upstream(n))).encode() for n in SIZES]
    path.write_bytes(encodings[0])
    reader = Reader(path)
    reader.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    try:
        while not reader.bad and loop.time() < deadline:
            for data in encodings:
                await asyncio.to_thread(path.write_bytes, data)
    finally:
        await reader.finish()
    assert reader.bad, "no torn read seen: the reader could not tell an atomic writer from a naive one"


# --- watch ---------------------------------------------------------------------------------------------------------


async def test_watch_lists_then_follows_writes_edits_and_deletions(client: DirectoryClient[Upstream]) -> None:
    write_upstream_file(client.root, "a", 1)
    write_upstream_file(client.root, "b", 2, namespace="other")
    async with watching(client, None) as w:
        assert names(w) == {f"{NS}/a", "other/b"}

        created = await client.create(kube_upstream("c", port=3))
        await w.eventually(lambda: port_in(w, "c") == 3, "our own create")

        write_upstream_file(client.root, "a", 11)  # edited in place by someone else, version unchanged
        await w.eventually(lambda: port_in(w, "a") == 11, "an edit behind the store's back")

        os.unlink(client.directory / "other" / "b.yaml")
        await w.eventually(lambda: "other/b" not in names(w), "a file deleted behind the store's back")

        await client.delete(created.key)
        await w.eventually(lambda: names(w) == {f"{NS}/a"}, "our own delete")


async def test_files_in_a_new_namespace_directory_are_seen(
    client: DirectoryClient[Upstream], caplog: pytest.LogCaptureFixture
) -> None:
    write_upstream_file(client.root, "a", 1)
    async with watching(client, None) as w:
        # Written right after the mkdir, before inotify watches the new directory: no event of their own.
        for i in range(5):
            write_upstream_file(client.root, f"svc-{i}", i, namespace="fresh")
        await w.eventually(lambda: len(names(w)) == 6, "all files of the new namespace")

        # Renamed, the directory's files no longer agree with their metadata: they go, and each is reported.
        os.rename(client.directory / "fresh", client.directory / "renamed")
        await w.eventually(lambda: names(w) == {f"{NS}/a"}, "the files of the renamed namespace gone")
        await w.eventually(
            lambda: all(warnings_about(caplog, client.directory / "renamed" / f"svc-{i}.yaml") for i in range(5)),
            "a warning for each file of the renamed namespace",
        )


async def test_watch_waits_for_a_root_that_does_not_exist_yet(tmp_path: Path) -> None:
    client = DirectoryClient(Upstream, tmp_path / "not" / "yet", resync_period=SLOW)
    async with watching(client, None) as w:
        assert names(w) == set()
        write_upstream_file(client.root, "a", 1)  # mkdir -p, then the file
        await w.eventually(lambda: port_in(w, "a") == 1, "a file under the root created after the watch started")
        await client.create(kube_upstream("b"))
        await w.eventually(lambda: names(w) == {f"{NS}/a", f"{NS}/b"}, "a file written through the client")


async def test_watch_survives_the_directory_being_removed_and_recreated(client: DirectoryClient[Upstream]) -> None:
    write_upstream_file(client.root, "a", 1)
    async with watching(client, None) as w:
        shutil.rmtree(client.root)
        await w.eventually(lambda: names(w) == set(), "everything gone with the directory")
        write_upstream_file(client.root, "b", 2)
        await w.eventually(lambda: names(w) == {f"{NS}/b"}, "the recreated directory's file")
        write_upstream_file(client.root, "c", 3)
        await w.eventually(lambda: names(w) == {f"{NS}/b", f"{NS}/c"}, "changes in the recreated directory")


async def test_watch_selects_namespaces_and_labels(client: DirectoryClient[Upstream]) -> None:
    for name, namespace, labels in [
        ("in", NS, {"team": "x"}),
        ("wrong-label", NS, {"team": "y"}),
        ("no-label", NS, None),
        ("wrong-namespace", "other", {"team": "x"}),
    ]:
        await client.create(with_labels(kube_upstream(name, namespace), labels))
    async with watching(client, namespaces=[NS], labels={"team": "x"}) as w:
        assert names(w) == {f"{NS}/in"}
        relabelled = await client.get(ObjectKey(NS, "wrong-label"))
        assert relabelled is not None
        await client.replace(with_labels(relabelled, {"team": "x"}))
        await w.eventually(lambda: names(w) == {f"{NS}/in", f"{NS}/wrong-label"}, "a relabelled object")
        await client.create(kube_upstream("later", "other"))
        dropped = await client.get(ObjectKey(NS, "in"))
        assert dropped is not None
        await client.replace(with_labels(dropped, None))
        await w.eventually(lambda: names(w) == {f"{NS}/wrong-label"}, "an object losing its label")


async def test_our_temp_files_are_ignored(client: DirectoryClient[Upstream], caplog: pytest.LogCaptureFixture) -> None:
    write_upstream_file(client.root, "a", 1)
    temp = client.directory / NS / ".a.yaml.x1y2z3.tmp"
    temp.write_text("metadata: {name: a, namesp")  # a write in progress
    async with watching(client, None) as w:
        assert names(w) == {f"{NS}/a"}
    assert warnings_about(caplog, temp) == []


# --- broken files --------------------------------------------------------------------------------------------------

VALID_BUT_TRUNCATED = "metadata:\n  name: half\n  namespace: gloo-system\nkube:\n  serviceName: 'ha"


async def test_malformed_files_are_reported_skipped_and_picked_up_once_fixed(
    client: DirectoryClient[Upstream], caplog: pytest.LogCaptureFixture
) -> None:
    write_upstream_file(client.root, "good", 1)
    namespace_dir = client.directory / NS
    broken = {
        "half": (VALID_BUT_TRUNCATED, "not valid YAML"),
        "nameless": ("metadata: {namespace: gloo-system}\nkube: {servicePort: 1}\n", "no metadata.name"),
        "list": ("- a\n- b\n", "expected a mapping"),
        "wrong-shape": ("metadata: {name: wrong-shape, namespace: gloo-system}\nkube: 42\n", "spec.kube"),
        "empty": ("", "empty file"),
        "binary": ("\udcff", "not UTF-8"),
        "custom-resource": (
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: custom-resource, namespace: gloo-system}\n"
            "spec: {kube: {servicePort: 1}}\n",
            "a Kubernetes custom resource",
        ),
    }
    for name, (text, _) in broken.items():
        (namespace_dir / f"{name}.yaml").write_bytes(text.encode("utf-8", "surrogateescape"))

    async with watching(client, None) as w:
        assert names(w) == {f"{NS}/good"}  # the rest of the tree still loads
        for name, (_, problem) in broken.items():
            messages = warnings_about(caplog, namespace_dir / f"{name}.yaml")
            assert len(messages) == 1, f"{name}: {messages}"
            assert problem in messages[0]

        write_upstream_file(client.root, "half", 5)  # the writer finished
        await w.eventually(lambda: port_in(w, "half") == 5, "the fixed file")
        (namespace_dir / "half.yaml").write_text(VALID_BUT_TRUNCATED)  # half-written again, after a valid version
        await w.eventually(lambda: len(warnings_about(caplog, namespace_dir / "half.yaml")) == 2, "the new warning")
        # Like every store, an object it cannot read now keeps no older reading in the cache.
        await w.eventually(lambda: port_in(w, "half") is None, "the unreadable version dropped from the cache")
        write_upstream_file(client.root, "half", 6)
        await w.eventually(lambda: port_in(w, "half") == 6, "the fixed file again")
        assert any("valid again" in r.getMessage() for r in caplog.records)

    with pytest.raises(StoreError, match=re.escape("empty.yaml: empty file")):
        await client.get(ObjectKey(NS, "empty"))


async def test_a_file_whose_metadata_disagrees_with_its_path_is_skipped(
    client: DirectoryClient[Upstream], caplog: pytest.LogCaptureFixture
) -> None:
    namespace_dir = client.directory / NS
    namespace_dir.mkdir(parents=True)
    copied = namespace_dir / "copy.yaml"  # cp a.yaml copy.yaml, and the name not edited
    copied.write_text(dump_yaml(to_flat(kube_upstream("a"))))
    no_namespace = namespace_dir / "bare.yaml"
    no_namespace.write_text("metadata: {name: bare}\nkube: {serviceName: bare}\n")
    elsewhere = namespace_dir / "moved.yaml"
    elsewhere.write_text(dump_yaml(to_flat(kube_upstream("moved", namespace="other"))))

    async with watching(client, None) as w:
        assert names(w) == set()
    assert "its metadata names gloo-system/a but its path says gloo-system/copy" in warnings_about(caplog, copied)[0]
    assert "bare with no namespace" in warnings_about(caplog, no_namespace)[0]
    assert "names other/moved" in warnings_about(caplog, elsewhere)[0]
    with pytest.raises(StoreError, match="make them agree"):
        await client.get(ObjectKey(NS, "copy"))


async def test_resync_catches_unreported_changes_and_problems_are_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = DirectoryClient(Upstream, tmp_path / "config", resync_period=0.1)
    tracked = write_upstream_file(client.root, "a", 1)
    # A write through a hard link outside the tree: inotify reports it to that other directory only, so only the
    # periodic resync can see it (its stat signature changed).
    outside = tmp_path / "outside.yaml"
    os.link(tracked, outside)
    broken = client.directory / NS / "broken.yaml"
    broken.write_text(VALID_BUT_TRUNCATED)

    async with watching(client, None) as w:
        for expected in (2, 3, 4):  # each one needs another resync
            outside.write_text(dump_yaml(to_flat(kube_upstream("a", port=expected))))
            await w.eventually(functools.partial(has_port, w, "a", expected), f"port {expected} through a resync")
    assert len(warnings_about(caplog, broken)) == 1, "reported again on a resync that found the same version"


async def test_the_gloo_sample_upstream_loads(
    client: DirectoryClient[Upstream], gloo_petstore_upstream_file: Path
) -> None:
    (client.directory / NS).mkdir(parents=True)
    shutil.copy(gloo_petstore_upstream_file, client.directory / NS / "petstore.yml")
    async with watching(client, None) as w:
        petstore = w.cache.get(ObjectKey(NS, "petstore"))
        assert petstore is not None
        assert petstore.spec.static is not None
        assert petstore.spec.static.hosts is not None
        assert petstore.spec.static.hosts[0].addr == "petstore"


# --- large objects, and our own writes ------------------------------------------------------------------------------


async def test_large_objects_are_written_as_compact_json_that_yaml_reads_too(client: DirectoryClient[Upstream]) -> None:
    large = await client.create(big_upstream(2_000))
    small = await client.create(kube_upstream("small"))

    data = client.path_for(large.key).read_bytes()
    assert len(data) > JSON_ABOVE_BYTES
    assert data.startswith(b'{"metadata":{"name":"big"')
    assert data.count(b"\n") == 1  # compact: one line
    assert load_yaml(data.decode()) == json.loads(data)  # JSON is YAML: Gloo's file client reads it as such
    assert await client.get(large.key) == large
    assert client.path_for(small.key).read_bytes().startswith(b"metadata:\n")  # small ones stay YAML, for people


async def test_json_and_yaml_flow_files_written_by_others_are_read(client: DirectoryClient[Upstream]) -> None:
    namespace_dir = client.directory / NS
    namespace_dir.mkdir(parents=True)
    document = to_flat(kube_upstream("pretty", port=1))
    (namespace_dir / "pretty.yaml").write_text("\n  " + json.dumps(document, indent=2))  # JSON, after blank space
    (namespace_dir / "flow.yaml").write_text("{metadata: {name: flow, namespace: gloo-system}, kube: {servicePort: 2}}")

    assert port_of(await client.get(ObjectKey(NS, "pretty"))) == 1
    assert port_of(await client.get(ObjectKey(NS, "flow"))) == 2  # YAML, although it starts like JSON


async def test_a_large_json_file_caught_half_written_is_reported_as_json(client: DirectoryClient[Upstream]) -> None:
    written = await client.create(big_upstream(SIZES[0]))
    path = client.path_for(written.key)
    data = path.read_bytes()
    assert len(data) // 2 > JSON_ABOVE_BYTES  # large enough that YAML does not get a second go at it
    path.write_bytes(data[: len(data) // 2])  # as another writer's truncate-and-write leaves it for a moment

    with pytest.raises(StoreError, match="not valid JSON: Input data was truncated"):
        await client.get(written.key)
    with pytest.raises(ConflictError, match="not readable now"):
        await client.replace(written)


async def test_the_watch_takes_what_this_client_wrote_without_reading_it_again(
    client: DirectoryClient[Upstream], tmp_path: Path
) -> None:
    other_writer = DirectoryClient(Upstream, client.root, resync_period=SLOW)
    async with watching(client, None) as w:
        created = await client.create(kube_upstream("ours", port=1))
        await w.eventually(lambda: port_in(w, "ours") == 1, "our create")
        assert w.cache.get(created.key) is created  # the very object written, not a reading of the file

        replaced = await client.replace(with_port(created, 2))
        await w.eventually(lambda: port_in(w, "ours") == 2, "our replace")
        assert w.cache.get(created.key) is replaced

        theirs = await other_writer.create(kube_upstream("theirs", port=3))
        await w.eventually(lambda: port_in(w, "theirs") == 3, "another client's create")
        read = w.cache.get(theirs.key)
        assert read is not theirs  # read from the file: this client did not write it
        assert read == theirs

        # Someone rewrites our file in place: it is no longer the file we wrote, so it is read.
        path = client.path_for(created.key)
        path.write_text(dump_yaml(to_flat(with_port(replaced, 44))))
        await w.eventually(lambda: port_in(w, "ours") == 44, "a rewrite of our file by someone else")
        assert w.cache.get(created.key) is not replaced


def test_a_large_spec_kept_as_bytes_is_spliced_in_with_the_same_content_as_the_flat_form() -> None:
    """The engine's Proxies carry their spec as canonical bytes: written after the metadata and status as they are,
    the file holds what the flat form holds, and reads back to the same spec."""
    spec = {"listeners": [{"name": "l", "bindPort": 8080, "vhosts": [f"host-{i}" for i in range(10_000)]}]}
    stored = StoredProxy.model_validate(
        {
            "metadata": {"name": "big", "namespace": NS, "labels": {"team": "x"}},
            "spec": CanonicalSpec.of(spec),
            "status": {"statuses": {NS: {"state": 1, "reportedBy": "gloo"}}},
        }
    )
    data = encode(stored)
    assert len(data) > JSON_ABOVE_BYTES
    assert data.count(b"\n") == 1
    assert json.loads(data) == to_flat(stored, compress=False)
    back = decode(StoredProxy, data, stored.key, DEFAULT_LIMITS)
    assert back.spec.json == stored.spec.json
    assert back.metadata == stored.metadata
