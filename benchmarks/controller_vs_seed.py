"""proxycontroller against the seed and against the floor of one write, side by side in one run, on a real
kube-apiserver + etcd started by this script on loopback.

The controller runs as users run it: `proxycontroller run --kubeconfig ... --no-leader-elect` (its service
account, least-privilege RBAC as `proxycontroller manifests` renders it). Everything is observed from outside,
through the API: a watch on the Proxy sees each write the moment it is stored, and the script decodes Gloo's
compressed spec itself. Nothing of the controller's internals is imported, so the script measures whatever the CLI runs.

1. Burst: 1,000 Upstreams created by 32 concurrent creators; proxycontroller against the seed itself (the
   walkthrough's Go program, tools/seed, built against Gloo v1.22.1 by `tools/testbin/build.sh seed`). Each
   starts on an empty namespace; times from the first creation, and from the last one, until the stored
   Proxy routes all of them; writes = Proxy versions stored from the first creation until 4 s after that.
   The seed writes its Proxy uncompressed, which fits at 1,000 upstreams (~0.2 MiB); it runs with the admin's
   kubeconfig because solo-kit's client factory checks that it may list Proxies in every namespace.
2. One upstream change (a new Upstream) with N present (10k, 50k): from just before its POST until the watch
   on the Proxy delivers a version that routes it. Floor: the least any writer of that Proxy must do:
   zlib + base64 of the exact spec bytes the controller ended up writing, plus one real PUT (replace at the
   current resourceVersion) of the object, checked by the resourceVersion the API server returns (a sample
   annotation differs each time, so the API server cannot skip the write as a no-op). Measured after the
   controller has stopped, on its own Proxy. Target: change <= 2x floor.
3. A foreign status write (a JSON merge patch of `status`, as Gloo reports its verdict) and, `--status-gap`
   later, one upstream change; samples alternate with those of (2). Added latency = median(3) - median(2).
   Target: it adds at most one floor.
4. The controller's peak memory at N: VmHWM (resident-set high-water mark) of its process.

Run: .venv/bin/python -m benchmarks.controller_vs_seed [--quick] [--controller-rev REV]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import (
    ControllerSource,
    RunningController,
    assert_running,
    build_seed,
    controller_process,
    controller_source,
    ms,
    ratio,
    spread,
    table,
    vm_hwm_kib,
)
from benchmarks.kubeapi import KubeApi, WatchEvent, namespaced, wait_until
from benchmarks.resources import (
    COMPRESS_ANNOTATION,
    NAMESPACE,
    PROXY_NAME,
    check_routes_all,
    compress_spec,
    is_compressed,
    mentions,
    routed_upstreams,
    spec_bytes,
    upstream_cr,
)
from proxycontroller.testing.servers.apiserver import KubeTestCluster, kube_test_cluster
from proxycontroller.testing.servers.processes import ManagedProcess

CREATORS = 32
UPSTREAMS = namespaced("upstreams", NAMESPACE)
PROXIES = namespaced("proxies", NAMESPACE)
PROXY = namespaced("proxies", NAMESPACE, PROXY_NAME)
SETTLE = 4.0  # after convergence, writes are still counted this long (the seed's last one can trail by ~2 s)
PAUSE = 1.5  # between samples: each change comes after a quiet spell


# -- observing the Proxy -----------------------------------------------------------------------------------


@dataclass
class ProxyWatch:
    """Every stored version of the Proxy, from one resourceVersion on, with the moment the watch delivered it."""

    api: KubeApi
    since: str
    versions: list[tuple[float, str]] = field(default_factory=list)  # (arrived, resourceVersion)
    latest: dict[str, Any] | None = None
    _waiters: list[tuple[Callable[[bytes], bool], asyncio.Future[float]]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ProxyWatch:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        try:
            async for event in self.api.watch(PROXIES, self.since, f"metadata.name={PROXY_NAME}"):
                self._seen(event)
            raise RuntimeError("the watch on the Proxy ended")
        except Exception as error:
            for _, future in self._waiters:
                if not future.done():
                    future.set_exception(error)
            raise

    def _seen(self, event: WatchEvent) -> None:
        self.versions.append((event.arrived, event.object["metadata"]["resourceVersion"]))
        if event.type == "DELETED":
            self.latest = None
            return
        self.latest = event.object
        if not self._waiters:
            return
        spec = spec_bytes(event.object)
        for predicate, future in list(self._waiters):
            if not future.done() and predicate(spec):
                future.set_result(event.arrived)
                self._waiters.remove((predicate, future))

    def until(self, predicate: Callable[[bytes], bool]) -> asyncio.Future[float]:
        """Resolves to the arrival time of the first version, from now on, whose spec bytes satisfy `predicate`."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        return future

    def writes_between(self, start: float, end: float) -> int:
        return sum(1 for arrived, _ in self.versions if start <= arrived <= end)


async def proxies_version(api: KubeApi) -> str:
    listing = await api.get(f"{PROXIES}?limit=1")
    return str(listing["metadata"]["resourceVersion"])


def routes_all(names: set[str]) -> Callable[[bytes], bool]:
    def check(spec: bytes) -> bool:
        return names <= routed_upstreams(json.loads(spec)).keys()

    return check


async def stored_spec(api: KubeApi) -> tuple[dict[str, Any], bytes]:
    proxy = await api.get(PROXY)
    return proxy, spec_bytes(proxy)


async def verify_stored(api: KubeApi, names: set[str]) -> dict[str, Any]:
    """The stored Proxy routes exactly `names`, each to its own upstream; returns the stored object."""
    proxy, spec = await stored_spec(api)
    check_routes_all(json.loads(spec), names)
    return proxy


async def clean_namespace(api: KubeApi) -> None:
    await api.delete_collection(UPSTREAMS)
    await api.delete(PROXY)

    async def empty() -> bool:
        return await api.count(UPSTREAMS) == 0 and await api.get_or_none(PROXY) is None

    await wait_until(empty, timeout=120, interval=0.2)


# -- the contestants ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def run_controller(
    source: ControllerSource, cluster: KubeTestCluster, work_dir: Path, log_level: str
) -> Iterator[RunningController]:
    backend = ["--kubeconfig", str(cluster.controller_kubeconfig), "--no-leader-elect"]
    with controller_process(source, work_dir, backend, log_level=log_level) as controller:
        yield controller


def controller_write_calls(controller: RunningController) -> Callable[[], int | None]:
    """Writes the controller counts itself (`proxycontroller_writes_total`, if it still serves that metric)."""

    def count() -> int | None:
        total = controller.metric_total("proxycontroller_writes_total")
        return None if total is None else round(total)

    return count


def seed_write_calls(process: ManagedProcess) -> Callable[[], int | None]:
    """The seed logs one line per Proxy write call (create or update), also when the update changes nothing."""

    def count() -> int | None:
        return process.log_path.read_text(errors="replace").count("wrote proxy object")

    return count


@contextlib.contextmanager
def run_seed(binary: Path, cluster: KubeTestCluster, work_dir: Path) -> Iterator[ManagedProcess]:
    work_dir.mkdir(parents=True, exist_ok=True)
    env = {"KUBECONFIG": str(cluster.admin_kubeconfig)}
    process = ManagedProcess("seed", [str(binary)], work_dir / "seed.log", env=env, cwd=work_dir)
    process.start()
    try:
        yield process
    finally:
        process.stop()


# -- 1. the burst ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BurstResult:
    first_to_converged: float
    last_to_converged: float
    writes: int  # Proxy versions stored
    write_calls: int | None  # write requests the contestant made (an unchanged PUT stores no version)
    creating: float


async def burst(
    api: KubeApi, process: ManagedProcess, write_calls: Callable[[], int | None], size: int, prefix: str
) -> BurstResult:
    """The contestant is running on an empty namespace; create `size` upstreams at once and watch the Proxy."""
    # Its first Proxy (no virtual hosts) is written, and it is quiet again.
    await wait_until(lambda: _exists(api), timeout=60, interval=0.1)
    await asyncio.sleep(2.0)
    names = {f"{prefix}-{i:05d}" for i in range(size)}
    async with ProxyWatch(api, await proxies_version(api)) as watch:
        converged = watch.until(routes_all(names))
        calls_before = write_calls()
        first = time.monotonic()
        await api.create_many(UPSTREAMS, (upstream_cr(name) for name in sorted(names)), CREATORS)
        last = time.monotonic()
        arrived = await asyncio.wait_for(converged, timeout=300)
        await asyncio.sleep(SETTLE)
        writes = watch.writes_between(first, arrived + SETTLE)
    calls_after = write_calls()
    assert_running(process)
    await verify_stored(api, names)
    calls = None if calls_before is None or calls_after is None else calls_after - calls_before
    return BurstResult(arrived - first, arrived - last, writes, calls, last - first)


async def _exists(api: KubeApi) -> bool:
    return await api.get_or_none(PROXY) is not None


# -- 2. and 3. one change, with and without a foreign status write before it --------------------------------


@dataclass
class SizeResult:
    present: int
    start_to_converged: float
    spec_mib: float
    stored_kib: float
    compressed: bool
    plain: list[float] = field(default_factory=list)
    plain_writes: list[int] = field(default_factory=list)
    after_status: list[float] = field(default_factory=list)
    after_status_writes: list[int] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    floor_compress: list[float] = field(default_factory=list)
    vm_hwm_mib: float = 0.0


async def one_change(api: KubeApi, watch: ProxyWatch, name: str) -> tuple[float, int]:
    """Seconds from just before the POST of upstream `name` until a stored Proxy routes it; Proxy writes meanwhile."""
    routed = watch.until(lambda spec: mentions(spec, name))
    start = time.monotonic()
    await api.create(UPSTREAMS, upstream_cr(name))
    arrived = await asyncio.wait_for(routed, timeout=300)
    return arrived - start, watch.writes_between(start, arrived)


async def status_write(api: KubeApi, sample: int) -> None:
    """What Gloo does after it translated a Proxy: a merge patch of `status.statuses.<its namespace>`."""
    before = (await api.get(PROXY))["metadata"]["resourceVersion"]
    status = {"state": 1, "reportedBy": "gloo", "messages": [f"benchmark sample {sample}"]}
    answer = await api.merge_patch(PROXY, {"status": {"statuses": {NAMESPACE: status}}})
    assert answer["metadata"]["resourceVersion"] != before, "the status patch did not write"


async def floor_write(api: KubeApi, spec: bytes, compressed: bool, sample: int) -> tuple[float, float]:
    """One real write of the Proxy with exactly `spec` (compressed as the controller stored it): seconds for
    compress + PUT, and for the compression alone. The resourceVersion must move."""
    current = await api.get(PROXY)
    before = current["metadata"]["resourceVersion"]
    metadata = {
        key: current["metadata"][key]
        for key in ("name", "namespace", "labels", "annotations", "resourceVersion")
        if key in current["metadata"]
    }
    metadata["annotations"] = {**(metadata.get("annotations") or {}), "benchmarks/floor-sample": str(sample)}
    start = time.monotonic()
    spec_part = json.dumps({"compressedSpec": compress_spec(spec)}).encode() if compressed else spec
    compressing = time.monotonic() - start
    head = {"apiVersion": "gloo.solo.io/v1", "kind": "Proxy", "metadata": metadata}
    body = json.dumps(head).encode()[:-1] + b',"spec":' + spec_part + b"}"
    answer = await api.put(PROXY, body)
    elapsed = time.monotonic() - start
    assert answer["metadata"]["resourceVersion"] != before, "the floor's PUT did not write"
    assert spec_bytes(answer) == spec or not compressed, "the floor wrote another spec"
    return elapsed, compressing


async def ensure_upstreams(api: KubeApi, names: list[str], present: int) -> None:
    """Grow the namespace to `present` upstreams (names kept in `names`), `CREATORS` creations at a time."""
    new = [f"present-{i:05d}" for i in range(len(names), present)]
    start = time.monotonic()
    await api.create_many(UPSTREAMS, (upstream_cr(name) for name in new), CREATORS)
    names.extend(new)
    print(f"  created {len(new)} upstreams in {time.monotonic() - start:.1f}s", flush=True)


async def at_size(
    api: KubeApi,
    source: ControllerSource,
    cluster: KubeTestCluster,
    work_dir: Path,
    names: list[str],
    present: int,
    samples: int,
    status_gap: float,
    log_level: str,
) -> SizeResult:
    await ensure_upstreams(api, names, present)
    await api.delete(PROXY)  # the controller starts from nothing at every size
    await wait_until(lambda: _absent(api), timeout=60)
    with run_controller(source, cluster, work_dir / f"controller-{present}", log_level) as controller:
        process = controller.process
        async with ProxyWatch(api, await proxies_version(api)) as watch:
            start = time.monotonic()
            converged = await asyncio.wait_for(watch.until(routes_all(set(names))), timeout=900)
            proxy = await verify_stored(api, set(names))
            spec = spec_bytes(proxy)
            result = SizeResult(
                present=present,
                start_to_converged=converged - start,
                spec_mib=len(spec) / 2**20,
                stored_kib=len(json.dumps(proxy["spec"])) / 1024,
                compressed=is_compressed(proxy),
            )
            print(
                f"  {present}: converged {result.start_to_converged:.1f}s after start; spec {result.spec_mib:.1f} MiB"
                f" ({'compressed' if result.compressed else 'uncompressed'}: {result.stored_kib:.0f} KiB stored)",
                flush=True,
            )
            await asyncio.sleep(2 * PAUSE)
            for i in range(samples):
                name = f"probe-{present}-{i}"
                latency, writes = await one_change(api, watch, name)
                names.append(name)
                result.plain.append(latency)
                result.plain_writes.append(writes)
                await asyncio.sleep(PAUSE)
                await status_write(api, i)
                await asyncio.sleep(status_gap)
                name = f"probe-{present}-{i}-after-status"
                latency, writes = await one_change(api, watch, name)
                names.append(name)
                result.after_status.append(latency)
                result.after_status_writes.append(writes)
                await asyncio.sleep(PAUSE)
                print(f"  sample {i}: {ms(result.plain[-1])} ms, after a status write {ms(latency)} ms", flush=True)
            assert_running(process)
            result.vm_hwm_mib = vm_hwm_kib(process.pid) / 1024
    # The controller has stopped; its last Proxy is the one the floor writes again.
    proxy = await verify_stored(api, set(names))
    spec = spec_bytes(proxy)
    compressed = is_compressed(proxy)
    assert COMPRESS_ANNOTATION in proxy["metadata"].get("annotations", {}) or not compressed
    for i in range(samples + 2):
        elapsed, compressing = await floor_write(api, spec, compressed, i)
        result.floor.append(elapsed)
        result.floor_compress.append(compressing)
        await asyncio.sleep(0.2)
    await verify_stored(api, set(names))  # the floor's writes changed nothing that routes
    return result


async def _absent(api: KubeApi) -> bool:
    return await api.get_or_none(PROXY) is None


# -- the run -----------------------------------------------------------------------------------------------


def median_of(results: list[BurstResult], key: Callable[[BurstResult], float | int | None]) -> float | None:
    values = [v for v in (key(r) for r in results) if v is not None]
    return statistics.median(values) if values else None


def print_burst(size: int, ours: list[BurstResult], seed: list[BurstResult]) -> None:
    print(
        f"\n1. Burst of {size} upstream creations ({CREATORS} concurrent creators), until the Proxy routes all"
        f" (median of {len(ours)} rounds; each round's figures in brackets):"
    )
    columns: list[Callable[[BurstResult], float | int | None]] = [
        lambda r: r.creating,
        lambda r: r.first_to_converged,
        lambda r: r.last_to_converged,
        lambda r: r.writes,
        lambda r: r.write_calls,
    ]
    formats = ["{:.2f}", "{:.2f}", "{:.2f}", "{:g}", "{:g}"]

    def cell(results: list[BurstResult], column: int) -> str:
        value = median_of(results, columns[column])
        if value is None:
            return "n/a"
        each = ", ".join(formats[column].format(columns[column](r)) for r in results)
        return f"{formats[column].format(value)} [{each}]"

    rows: list[tuple[object, ...]] = [
        (name, size, *(cell(results, c) for c in range(len(columns))))
        for name, results in (("proxycontroller", ours), ("seed (tools/seed, Gloo v1.22.1)", seed))
    ]
    ratios = []
    for column in (1, 2, 3):
        ours_value, seed_value = median_of(ours, columns[column]), median_of(seed, columns[column])
        ratios.append(ratio(seed_value or 0.0, ours_value or 0.0))
    rows.append(("seed / proxycontroller", "", "", *ratios, ""))
    print(
        table(
            (
                "controller",
                "upstreams",
                "creating s",
                "first change to converged s",
                "last change to converged s",
                "Proxy versions stored",
                "write requests",
            ),
            rows,
        )
    )


def print_sizes(results: list[SizeResult], status_gap: float) -> None:
    print("\n2./3. One upstream change until the stored Proxy routes it, beside the floor (zlib + base64 of the")
    print(f"exact spec + one real PUT); 3. = the change {ms(status_gap)} ms after a foreign status write:")
    rows: list[tuple[object, ...]] = []
    for r in results:
        rows += [
            (
                r.present,
                "2. change -> stored Proxy routes it",
                *spread(r.plain),
                ratio(statistics.median(r.plain), statistics.median(r.floor)),
                f"{statistics.median(r.plain_writes):g}",
            ),
            (
                r.present,
                "3. same, after a foreign status write",
                *spread(r.after_status),
                ratio(statistics.median(r.after_status), statistics.median(r.floor)),
                f"{statistics.median(r.after_status_writes):g}",
            ),
            (r.present, "floor: compress + PUT (real write)", *spread(r.floor), "1.00x", ""),
            (r.present, "  of which zlib + base64", *spread(r.floor_compress), "", ""),
        ]
    print(table(("upstreams", "what", "median ms", "min ms", "max ms", "/ floor", "writes per change"), rows))
    print()
    summary = []
    for r in results:
        plain, status, floor = (statistics.median(x) for x in (r.plain, r.after_status, r.floor))
        added = status - plain
        summary.append(
            (
                r.present,
                ratio(plain, floor),
                "met" if plain <= 2 * floor else "NOT met",
                ms(added),
                f"{added / floor:.2f}",
                "met" if added <= floor else "NOT met",
                f"{r.start_to_converged:.1f}",
                f"{r.spec_mib:.1f} / {r.stored_kib:.0f}",
                f"{r.vm_hwm_mib:.0f}",
            )
        )
    print(
        table(
            (
                "upstreams",
                "change / floor",
                "<= 2x",
                "status adds ms",
                "adds floors",
                "<= 1 floor",
                "start to converged s",
                "spec MiB / stored KiB",
                "4. VmHWM MiB",
            ),
            summary,
        )
    )


async def run(args: argparse.Namespace, source: ControllerSource, seed_binary: Path, work_dir: Path) -> None:
    with kube_test_cluster(work_dir / "cluster") as cluster:
        api = KubeApi(cluster.admin_kubeconfig, connections=CREATORS)
        try:
            ours: list[BurstResult] = []
            seed: list[BurstResult] = []
            for round_ in range(args.burst_rounds):
                # Alternating who goes first: neither always meets the API server and etcd in the same state.
                for which in ("ours", "seed") if round_ % 2 == 0 else ("seed", "ours"):
                    if which == "ours":
                        work = work_dir / f"burst-ours-{round_}"
                        with run_controller(source, cluster, work, args.log_level) as controller:
                            calls = controller_write_calls(controller)
                            ours.append(await burst(api, controller.process, calls, args.burst, f"ours-{round_}"))
                    else:
                        with run_seed(seed_binary, cluster, work_dir / f"burst-seed-{round_}") as process:
                            seed.append(
                                await burst(api, process, seed_write_calls(process), args.burst, f"seed-{round_}")
                            )
                    await clean_namespace(api)
            print_burst(args.burst, ours, seed)
            names: list[str] = []
            results = []
            for present in args.sizes:
                result = await at_size(
                    api, source, cluster, work_dir, names, present, args.samples, args.status_gap, args.log_level
                )
                results.append(result)
            print_sizes(results, args.status_gap)
        finally:
            await api.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run: one burst of 200, 2k upstreams, 3 samples")
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--burst-rounds", type=int, default=3, help="bursts per contestant, alternating")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000], help="upstreams present")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--status-gap", type=float, default=0.05, help="seconds from status write to change")
    parser.add_argument("--controller-rev", help="measure this commit's src/ (git archive) instead of the working tree")
    parser.add_argument("--keep", type=Path, help="work directory to keep (logs), instead of a temporary one")
    parser.add_argument("--log-level", default="info", help="the controller's --log-level (its log is in the work dir)")
    args = parser.parse_args()
    if args.quick:
        args.burst, args.burst_rounds, args.sizes, args.samples = 200, 1, [2_000], 3
    with contextlib.ExitStack() as stack:
        source = controller_source(args.controller_rev, stack)
        seed_binary = build_seed()
        work_dir = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        print(f"controller: {source.description}; seed: {seed_binary}", flush=True)
        asyncio.run(run(args, source, seed_binary, work_dir))


if __name__ == "__main__":
    main()
