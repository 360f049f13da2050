"""The controller against a port of the seed's loop, side by side in one run on a real kube-apiserver.

1. A burst of upstream creations: time until the Proxy routes all of them, and how many writes it took.
   The seed's loop sleeps one second per event, so its burst is smaller (--seed-burst); its per-event cost is
   reported and extrapolated to the full burst, labelled as such.
2. With many upstreams present, the latency from creating one more to a stored Proxy that routes it,
   beside the time of one raw write (PUT) of the same Proxy, measured in the same run.

Run: .venv/bin/python -m benchmarks.controller_vs_seed [--burst 1000 --seed-burst 30 --present 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lightkube import AsyncClient, KubeConfig

from benchmarks.common import table
from benchmarks.seed_loop import ProxyCR, SeedLoop, UpstreamCR
from proxycontroller.config import ControllerConfig, ProxySettings, ReconcileSettings
from proxycontroller.model.encoding import decompress_spec, is_compressed
from proxycontroller.model.resources import ObjectKey, Proxy, Upstream
from proxycontroller.reconcile.loop import Reconciler, cancel
from proxycontroller.store.kube import KubeClient, make_async_client
from proxycontroller.testing.servers.apiserver import KubeTestCluster, kube_test_cluster
from proxycontroller.translate.strategies import host_header

CONCURRENCY = 32


def upstream(name: str) -> Any:
    return UpstreamCR.from_dict(
        {
            "apiVersion": "gloo.solo.io/v1",
            "kind": "Upstream",
            "metadata": {"name": name, "namespace": "gloo-system"},
            "spec": {"static": {"hosts": [{"addr": "127.0.0.1", "port": 8080}]}},
        }
    )


async def create_all(admin: AsyncClient, names: list[str]) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(name: str) -> None:
        async with gate:
            await admin.create(upstream(name))

    await asyncio.gather(*(one(name) for name in names))


async def delete_all_upstreams(admin: AsyncClient) -> None:
    await admin.deletecollection(UpstreamCR, namespace="gloo-system")


def names_in(document: dict[str, Any]) -> set[str]:
    """Virtual host names of a stored Proxy, read from the raw document (no model: cheap enough to poll)."""
    spec = document.get("spec") or {}
    if is_compressed(spec):
        spec = decompress_spec(spec)
    listeners = spec.get("listeners") or [{}]
    return {vh["name"] for vh in (listeners[0].get("httpListener") or {}).get("virtualHosts") or []}


async def routed(admin: AsyncClient, proxy: str) -> set[str]:
    try:
        raw: Any = await admin.get(ProxyCR, proxy, namespace="gloo-system")
    except Exception:  # not written yet
        return set()
    return names_in(raw.to_dict())


async def seen_routing(admin: AsyncClient, proxy: str, name: str, since: str) -> float:
    """The moment (monotonic) a watch on the Proxy delivers a version that routes `name`."""
    raw: Any
    async for _, raw in admin.watch(
        ProxyCR, namespace="gloo-system", fields={"metadata.name": proxy}, resource_version=since
    ):
        if name in names_in(raw.to_dict()):
            return time.monotonic()
    raise AssertionError("watch ended")


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not converged within {timeout}s")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def ours(cluster: KubeTestCluster, proxy: str):  # type: ignore[no-untyped-def]
    client = make_async_client(cluster.controller_kubeconfig)
    config = ControllerConfig(proxy=ProxySettings(name=proxy), instance=proxy, reconcile=ReconcileSettings())
    reconciler = Reconciler(config, host_header, KubeClient(Upstream, client), KubeClient(Proxy, client))
    task = asyncio.create_task(reconciler.run())
    try:
        yield reconciler
    finally:
        await cancel(task)
        await client.close()


@contextlib.asynccontextmanager
async def seed(cluster: KubeTestCluster, proxy: str):  # type: ignore[no-untyped-def]
    client = AsyncClient(KubeConfig.from_file(cluster.controller_kubeconfig))
    loop = SeedLoop(client, proxy)
    task = asyncio.create_task(loop.run())
    try:
        yield loop
    finally:
        await cancel(task)
        await client.close()


async def burst(cluster: KubeTestCluster, admin: AsyncClient, size: int, which: str) -> tuple[float, float, int]:
    """Seconds from the first creation until the Proxy routes every upstream, seconds from the last creation
    until then, and the writes made meanwhile."""
    await delete_all_upstreams(admin)
    proxy = f"burst-{which}"
    names = [f"{which}-svc-{i:05d}" for i in range(size)]
    runner = ours if which == "ours" else seed
    async with runner(cluster, proxy) as controller:
        await asyncio.sleep(2)  # caches synced, first (empty) Proxy written
        writes_before = controller.total_writes if which == "ours" else controller.writes
        start = time.monotonic()
        await create_all(admin, names)
        burst_end = time.monotonic()

        async def done() -> bool:
            return await routed(admin, proxy) == set(names)

        await wait_until(done, timeout=max(120.0, size * 2.0), interval=0.1)
        converged = time.monotonic()
        writes = (controller.writes if which == "seed" else controller.total_writes) - writes_before
    return converged - start, converged - burst_end, writes


async def single_change_latency(
    cluster: KubeTestCluster, admin: AsyncClient, present: int, samples: int
) -> tuple[list[float], list[float], list[float]]:
    await delete_all_upstreams(admin)
    await create_all(admin, [f"present-{i:05d}" for i in range(present)])
    proxy = "latency-ours"
    latencies: list[float] = []
    raw_writes: list[float] = []
    model_writes: list[float] = []
    async with ours(cluster, proxy) as reconciler:

        async def all_present() -> bool:
            return len(await routed(admin, proxy)) == present

        await wait_until(all_present, timeout=300, interval=0.5)
        await asyncio.wait_for(reconciler.converged.wait(), 120)
        for i in range(samples):
            name = f"probe-{i}"
            current: Any = await admin.get(ProxyCR, proxy, namespace="gloo-system")
            watcher = asyncio.create_task(seen_routing(admin, proxy, name, current.metadata.resourceVersion))
            await asyncio.sleep(0.5)  # the watch is open
            start = time.monotonic()
            await admin.create(upstream(name))
            seen = await asyncio.wait_for(watcher, 60)
            latencies.append(seen - start)
            await asyncio.sleep(1.0)
        # One raw write of the same Proxy, for comparison: GET it and PUT it back unchanged but for a label.
        for i in range(samples):
            raw: Any = await admin.get(ProxyCR, proxy, namespace="gloo-system")
            raw.metadata.labels = {**(raw.metadata.labels or {}), "bench": str(i)}
            start = time.monotonic()
            await admin.replace(raw)
            raw_writes.append(time.monotonic() - start)
        # And one write of the same Proxy from its model, as any writer must do it: encode (JSON, and Gloo's
        # compression above the threshold) and PUT, through the store.
        store = KubeClient(Proxy, admin)
        for i in range(samples):
            current = await store.get(ObjectKey("gloo-system", proxy))
            assert current is not None
            labels = {**(current.metadata.labels or {}), "bench": f"model-{i}"}
            changed = current.model_copy(update={"metadata": current.metadata.model_copy(update={"labels": labels})})
            start = time.monotonic()
            await store.replace(changed)
            model_writes.append(time.monotonic() - start)
    return latencies, raw_writes, model_writes


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, kube_test_cluster(Path(tmp)) as cluster:
        admin = AsyncClient(KubeConfig.from_file(cluster.admin_kubeconfig), field_manager="bench")
        try:
            ours_s, ours_lag, ours_writes = await burst(cluster, admin, args.burst, "ours")
            seed_s, seed_lag, seed_writes = await burst(cluster, admin, args.seed_burst, "seed")
            # The seed's loop costs a fixed second or more per event, so its time scales with the burst.
            scale = args.burst / args.seed_burst
            seed_full, seed_full_lag, seed_full_writes = seed_s * scale, seed_lag * scale, round(seed_writes * scale)
            print(f"\nBurst of creations (ours: {args.burst}; seed measured on {args.seed_burst}, extrapolated):")
            print(
                table(
                    ("controller", "burst", "first change to converged s", "last change to converged s", "writes"),
                    [
                        ("proxycontroller", args.burst, f"{ours_s:.2f}", f"{ours_lag:.2f}", ours_writes),
                        ("seed loop (measured)", args.seed_burst, f"{seed_s:.2f}", f"{seed_lag:.2f}", seed_writes),
                        (
                            "seed loop (extrapolated)",
                            args.burst,
                            f"{seed_full:.0f}",
                            f"{seed_full_lag:.0f}",
                            seed_full_writes,
                        ),
                    ],
                )
            )
            print(
                f"convergence from the first change: {seed_full / ours_s:.0f}x faster; from the last change: "
                f"{seed_full_lag / max(ours_lag, 1e-3):.0f}x faster; "
                f"writes: {seed_full_writes / max(ours_writes, 1):.0f}x fewer"
            )
            latencies, raw_writes, model_writes = await single_change_latency(
                cluster, admin, args.present, args.samples
            )
            median_latency, median_raw = statistics.median(latencies), statistics.median(raw_writes)
            median_model = statistics.median(model_writes)
            print(f"\nOne upstream created with {args.present} present, until the stored Proxy routes it:")
            print(
                table(
                    ("what", "median ms", "min ms", "max ms"),
                    [
                        (
                            "proxycontroller, change to stored Proxy",
                            f"{median_latency * 1000:.0f}",
                            f"{min(latencies) * 1000:.0f}",
                            f"{max(latencies) * 1000:.0f}",
                        ),
                        (
                            "one raw PUT of the same Proxy",
                            f"{median_raw * 1000:.0f}",
                            f"{min(raw_writes) * 1000:.0f}",
                            f"{max(raw_writes) * 1000:.0f}",
                        ),
                        (
                            "one write of the same Proxy from its model (encode + PUT)",
                            f"{median_model * 1000:.0f}",
                            f"{min(model_writes) * 1000:.0f}",
                            f"{max(model_writes) * 1000:.0f}",
                        ),
                        ("seed loop (1 s sleep + re-read + write)", f">= {1000 + median_raw * 1000:.0f}", "", ""),
                    ],
                )
            )
            print(
                f"latency / raw PUT: {median_latency / median_raw:.1f}x; "
                f"latency / write from the model: {median_latency / median_model:.1f}x"
            )
        finally:
            await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--seed-burst", type=int, default=30)
    parser.add_argument("--present", type=int, default=10000)
    parser.add_argument("--samples", type=int, default=5)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
