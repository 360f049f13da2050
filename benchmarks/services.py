"""Services as a source against Upstreams: the same number of route targets (one TCP port per Service), the same
Proxy, timed as `benchmarks.translate` times Upstreams: cold (a fresh logic), resync (the same objects in a
snapshot without a hint), one object changed (a different one in each of 5 rounds; the snapshot as the engine
builds it, its dict copy timed too). Run: .venv/bin/python -m benchmarks.services
"""

from __future__ import annotations

import argparse
import gc
import random
import time

from benchmarks.common import table, timed
from benchmarks.translate import make_upstreams
from proxycontroller.cli.main import tune_gc
from proxycontroller.config import ControllerConfig
from proxycontroller.model.desired import Desired
from proxycontroller.model.resources import ObjectKey, Resource, Service, Upstream
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.validate.desired import ProxyLogic


def make_services(count: int) -> list[Service]:
    services = [
        Service.model_validate(
            {
                "metadata": {"name": f"service-{i}", "namespace": "default"},
                "spec": {"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
            }
        )
        for i in range(count)
    ]
    random.Random(count).shuffle(services)
    return services


def one_change(logic: ProxyLogic, kind: type[Resource], snapshot: Snapshot, rounds: int = 5) -> float:
    best = float("inf")
    objects: dict[ObjectKey, Resource] = dict(snapshot.of_kind(kind))
    for round_ in range(rounds):
        key = list(objects)[round_ * 7919 % len(objects)]
        item = objects[key]
        objects[key] = item.model_copy(
            update={"metadata": item.metadata.model_copy(update={"labels": {"r": str(round_)}})}
        )
        gc.collect()
        start = time.perf_counter()
        snapshot = snapshot.followed_by({kind: dict(objects)}, {kind: {key}})
        logic.desired(snapshot)
        best = min(best, time.perf_counter() - start)
    return best


def measure(size: int, source: str) -> tuple[str, ...]:
    kind: type[Resource] = Service if source == "services" else Upstream
    items: list[Resource] = [*make_services(size)] if kind is Service else [*make_upstreams(size)]
    config = ControllerConfig.model_validate({"namespaces": ["default", "gloo-system"], "sources": [source]})
    snapshot = Snapshot.of(items)

    def cold() -> Desired:
        return ProxyLogic(config).desired(snapshot)

    desired, cold_s = timed(cold)
    logic = ProxyLogic(config)
    logic.desired(snapshot)
    _, resync_s = timed(lambda: logic.desired(Snapshot.of(items)))
    snapshot = Snapshot.of(items)
    logic.desired(snapshot)
    change_s = one_change(logic, kind, snapshot)
    hosts = desired.objects[0].spec.json.count(b'"domains"')
    return (f"{size:,}", source, str(hosts), f"{cold_s * 1000:.0f}", f"{resync_s * 1000:.1f}", f"{change_s * 1000:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    args = parser.parse_args()
    tune_gc()  # as the command line runs it
    rows = [measure(size, source) for size in args.sizes for source in ("upstreams", "services")]
    header = ("inputs", "source", "virtual hosts", "cold ms", "resync ms", "one changed, as the engine asks ms")
    print(table(header, rows))


if __name__ == "__main__":
    main()
