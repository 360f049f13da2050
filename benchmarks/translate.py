"""Time and peak memory to translate and serialize 1k, 10k and 50k upstreams.

"cold": every virtual host built anew; "resync": the same upstreams again, in a snapshot that says nothing of
what changed, so every upstream is compared by identity; "one upstream changed": one upstream is a new object,
in a snapshot built as the engine builds it (a copy of its cache, and the key that changed: timed too), or
without that hint. Baseline, measured in the same run: a port of the seed's
makeDesiredProxy to Python: one loop building plain dicts, no validation, no determinism (input order), no
Gloo rules, serialized with json.dumps. Run: .venv/bin/python -m benchmarks.translate
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from typing import Any

from benchmarks.common import peak_memory, table, timed
from proxycontroller.cli.main import tune_gc
from proxycontroller.config import ControllerConfig
from proxycontroller.model.desired import Desired
from proxycontroller.model.resources import Upstream
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.validate.desired import ProxyLogic


def make_upstreams(count: int) -> list[Upstream]:
    upstreams = [
        Upstream.model_validate(
            {
                "metadata": {"name": f"default-service-{i}-8080", "namespace": "gloo-system"},
                "spec": {"kube": {"serviceName": f"service-{i}", "serviceNamespace": "default", "servicePort": 8080}},
            }
        )
        for i in range(count)
    ]
    random.Random(count).shuffle(upstreams)
    return upstreams


def seed_port(upstreams: list[Upstream]) -> dict[str, Any]:
    """makeDesiredProxy from the seed, line for line."""
    virtual_hosts = []
    for upstream in upstreams:
        ref = {"name": upstream.metadata.name, "namespace": upstream.metadata.namespace}
        virtual_hosts.append(
            {
                "name": upstream.metadata.name,
                "domains": [upstream.metadata.name],
                "routes": [{"matchers": [{"prefix": "/"}], "routeAction": {"single": {"upstream": ref}}}],
            }
        )
    return {
        "metadata": {"namespace": "gloo-system", "name": "my-cool-proxy"},
        "listeners": [
            {
                "name": "my-amazing-listener",
                "bindAddress": "::",
                "bindPort": 8080,
                "httpListener": {"virtualHosts": virtual_hosts},
            }
        ],
    }


def changed_copy(upstream: Upstream, round_: int) -> Upstream:
    labels = {"changed": str(round_)}
    return upstream.model_copy(update={"metadata": upstream.metadata.model_copy(update={"labels": labels})})


def one_change(logic: ProxyLogic, snapshot: Snapshot, hinted: bool, rounds: int = 5) -> tuple[Snapshot, float]:
    """The best time of a pass after one upstream became a new object, a different one each round; the
    snapshot built as the engine builds it (a copy of its cache, and the key it touched) or, unhinted, one
    that says nothing of what changed (the logic compares every upstream by identity)."""
    best = float("inf")
    for round_ in range(rounds):
        objects = snapshot.upstreams
        key = list(objects)[round_ * 7919 % len(objects)]
        cache = dict(objects)
        cache[key] = changed_copy(objects[key], round_)
        gc.collect()
        start = time.perf_counter()
        if hinted:
            snapshot = snapshot.followed_by({Upstream: dict(cache)}, {Upstream: {key}})
        else:
            snapshot = Snapshot.of_mappings({Upstream: dict(cache)})
        logic.desired(snapshot)
        best = min(best, time.perf_counter() - start)
    return snapshot, best


def measure(size: int, config: ControllerConfig) -> tuple[str, ...]:
    upstreams = make_upstreams(size)
    snapshot = Snapshot.of(upstreams)
    logic = ProxyLogic(config)

    def cold() -> Desired:
        return ProxyLogic(config).desired(snapshot)  # a fresh logic: every virtual host built and serialized anew

    desired, cold_s = timed(cold)
    logic.desired(snapshot)
    resync = Snapshot.of(upstreams)  # the same objects in a snapshot without a hint: compared one by one
    _, warm_s = timed(lambda: logic.desired(resync))
    snapshot = Snapshot.of(upstreams)
    logic.desired(snapshot)
    snapshot, hinted_s = one_change(logic, snapshot, hinted=True)
    _, unhinted_s = one_change(logic, snapshot, hinted=False)
    text = desired.objects[0].spec.json  # the bytes a write sends (spliced during the pass)
    seed, seed_s = timed(lambda: seed_port(upstreams))
    _, seed_serialize_s = timed(lambda: json.dumps(seed))
    memory = peak_memory(cold)
    return (
        f"{size:,}",
        f"{cold_s * 1000:.0f}",
        f"{warm_s * 1000:.1f}",
        f"{hinted_s * 1000:.1f}",
        f"{unhinted_s * 1000:.1f}",
        f"{seed_s * 1000:.0f}",
        f"{seed_serialize_s * 1000:.0f}",
        f"{cold_s / (seed_s + seed_serialize_s):.1f}x",
        f"{hinted_s / (seed_s + seed_serialize_s):.3f}x",
        f"{memory / 2**20:.0f}",
        f"{len(text) / 2**20:.1f}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    args = parser.parse_args()
    tune_gc()  # as the command line runs it
    config = ControllerConfig()
    rows = [measure(size, config) for size in args.sizes]
    print(
        table(
            (
                "upstreams",
                "cold: translate+validate+JSON ms",
                "resync (nothing changed, compared by identity) ms",
                "one upstream changed, as the engine asks ms",
                "one upstream changed, no hint ms",
                "seed port ms",
                "seed serialize ms",
                "cold / seed (both with JSON)",
                "one change / seed",
                "peak MiB",
                "JSON MiB",
            ),
            rows,
        )
    )


if __name__ == "__main__":
    main()
