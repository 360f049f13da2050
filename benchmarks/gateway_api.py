"""The Gateway API output against the Gloo output: the same Upstreams and strategies, HTTPRoutes (and
ReferenceGrants) instead of one Proxy, timed as `benchmarks.services` times its sources: cold (a fresh logic),
resync (the same objects in a snapshot without a hint), one object changed (as the engine builds the snapshot).
Run: .venv/bin/python -m benchmarks.gateway_api
"""

from __future__ import annotations

import argparse

from benchmarks.common import table, timed
from benchmarks.services import one_change
from benchmarks.translate import make_upstreams
from proxycontroller.cli.main import tune_gc
from proxycontroller.config import ControllerConfig
from proxycontroller.model.desired import Desired
from proxycontroller.model.resources import Upstream
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.validate.desired import ProxyLogic
from proxycontroller.validate.gateway_desired import GatewayLogic

PARENTS = {"parentRefs": [{"name": "http", "namespace": "kgateway-system", "sectionName": "http"}]}


def measure(size: int, output: str) -> tuple[str, ...]:
    items = make_upstreams(size)
    config = ControllerConfig.model_validate(
        {"namespaces": ["default", "gloo-system"], "output": output, "gatewayApi": PARENTS}
    )
    make = GatewayLogic if output == "gateway-api" else ProxyLogic
    snapshot = Snapshot.of(items)

    def cold() -> Desired:
        return make(config).desired(snapshot)

    desired, cold_s = timed(cold, repeat=1)
    logic = make(config)
    logic.desired(snapshot)
    _, resync_s = timed(lambda: logic.desired(Snapshot.of(items)))
    snapshot = Snapshot.of(items)
    logic.desired(snapshot)
    change_s = one_change(logic, Upstream, snapshot)  # type: ignore[arg-type]  # both are logics
    return (f"{size:,}", output, str(len(desired.objects)), f"{cold_s * 1000:.0f}", f"{resync_s * 1000:.1f}",
            f"{change_s * 1000:.1f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    tune_gc()  # as the command line runs it
    rows = [measure(size, output) for size in args.sizes for output in ("gloo", "gateway-api")]
    header = ("upstreams", "output", "objects", "cold ms", "resync ms", "one changed, as the engine asks ms")
    print(table(header, rows))


if __name__ == "__main__":
    main()
