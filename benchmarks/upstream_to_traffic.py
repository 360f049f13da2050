"""From an Upstream file appearing to the first request that gets the pets through Envoy: our controller's path
beside Gloo's own gateway path, side by side in one run, on one real Gloo in directory mode.

(a) ours: `proxycontroller run --config-dir` sees the Upstream (namespace gloo-system) and writes the Proxy
    gloo-system/my-cool-proxy; Gloo reads it (persistProxySpec) and serves it to an Envoy bound to
    gloo-system~my-cool-proxy.
(b) Gloo's: the Upstream plus an equivalent VirtualService (domain = the upstream's name, route / -> the upstream)
    are written together (namespace gloo-bench, which the controller does not route); Gloo's gateway translator
    turns them, through the Gateway gateway-proxy (as in Gloo's install/docker-compose-file, but on loopback),
    into the Proxy gloo-system/gateway-proxy, served to an Envoy bound to gloo-system~gateway-proxy.

Samples alternate between the paths (which goes first alternates per pair), each after a random pause so that
both meet Gloo's polling file watch (period = Settings.refreshRate) at every phase. A sample's clock starts just
before its Upstream file is renamed into place and stops at the first `GET /api/pets` (Host: the upstream's name)
that answers 200 with the pets; requests go out every few milliseconds. Along the way the script notes when each
path's Proxy file first routes the new upstream (the controller's share, resp. Gloo's gateway translation). After
a sample its files are removed again (and Envoy is seen to stop routing it), so every sample starts from the same
small tree.

What bounds both paths is Gloo, equally: its file watches poll every refreshRate, and its API snapshot emitter
(solo-kit) hands changes to the translators only on a fixed 1-second ticker. Our path has one more hop: the
controller writes a Proxy file, which Gloo's Proxy watch has to poll in turn.

Gloo 1.22.1 in directory mode crashes now and then (a nil-pointer panic when its polling list reads a file that
its own status writer has just truncated); `SupervisedGloo` starts it again and the interrupted sample is taken
again with a fresh upstream. The report counts the crashes. With refreshRate 0.1s it crashes too often to measure.

Run: .venv/bin/python -m benchmarks.upstream_to_traffic [--samples 5] [--refresh-rate 1s] [--coalesce-window 0.1]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import re
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import table
from proxycontroller.testing.servers.controller import controller_process
from proxycontroller.testing.servers.envoy import Envoy, start_envoy
from proxycontroller.testing.servers.gloo import (
    GLOO_SYSTEM,
    GlooDirectory,
    build_gloo,
    fixed_ports_in_use,
    gloo_directory_process,
    gloo_ready,
    write_directory_tree,
)
from proxycontroller.testing.servers.petstore import PETS_BODY, PETS_PATH, start_petstore
from proxycontroller.testing.servers.processes import ManagedProcess, free_port
from proxycontroller.testing.servers.traffic import get

OUR_PROXY = "my-cool-proxy"
GATEWAY_PROXY = "gateway-proxy"
BENCH_NAMESPACE = "gloo-bench"  # Gloo's path: watched by Gloo, not routed by the controller
POLL_INTERVAL = 0.005


@dataclass(frozen=True)
class Sample:
    path: str
    seconds: float  # upstream file -> first 200 with the pets
    proxy_seconds: float | None  # upstream file -> the path's Proxy file routes the upstream


@dataclass
class Stage:
    """What one path needs: where its Proxy file is, the listener its Envoy opens, the files a sample writes."""

    label: str
    proxy_file: Path
    listener_port: int
    namespace: str
    with_virtual_service: bool
    samples: list[Sample] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener_port}{PETS_PATH}"


class GlooDied(RuntimeError):
    """Gloo exited while a sample ran."""


def static_upstream(name: str, namespace: str, port: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "static": {"hosts": [{"addr": "127.0.0.1", "port": port}]},
    }


def virtual_service(name: str, namespace: str) -> dict[str, Any]:
    """What our controller makes of one upstream, as a VirtualService: its name as the domain, / to it."""
    return {
        "metadata": {"name": name, "namespace": namespace},
        "virtualHost": {
            "domains": [name],
            "routes": [
                {
                    "matchers": [{"prefix": "/"}],
                    "routeAction": {"single": {"upstream": {"name": name, "namespace": namespace}}},
                }
            ],
        },
    }


def gateway(bind_port: int) -> dict[str, Any]:
    """Gloo's docker-compose gateway-proxy Gateway (flat form), bound to loopback and a free port."""
    return {
        "metadata": {"name": GATEWAY_PROXY, "namespace": GLOO_SYSTEM},
        "bindAddress": "127.0.0.1",
        "bindPort": bind_port,
        "httpGateway": {},
        "proxyNames": [GATEWAY_PROXY],
        "ssl": False,
        "useProxyProto": False,
    }


def routes(proxy_file: Path, name: str) -> bool:
    """Whether the Proxy file mentions the upstream (as a domain/virtual host); cheap enough to poll."""
    try:
        text = proxy_file.read_text()
    except OSError:
        return False
    # The whole name: bench-ours-1 must not match bench-ours-10 or bench-ours-1-retry1.
    return re.search(re.escape(name) + r"(?![-\w.])", text) is not None


def wait_for_pets(stage: Stage, name: str, start: float, timeout: float, alive: Callable[[], bool]) -> Sample:
    proxy_at: float | None = None
    deadline = start + timeout
    while True:
        now = time.perf_counter()
        if proxy_at is None and routes(stage.proxy_file, name):
            proxy_at = now
        code, body = get(stage.url, name)
        if code == 200 and body == PETS_BODY:
            end = time.perf_counter()
            return Sample(stage.label, end - start, None if proxy_at is None else proxy_at - start)
        if not alive():
            raise GlooDied(f"{stage.label}: Gloo exited before {name} was served")
        if now > deadline:
            raise TimeoutError(f"{stage.label}: {name} not served within {timeout:.0f}s (last answer {code})")
        time.sleep(POLL_INTERVAL)


def has_gloo_status(path: Path) -> bool:
    """Whether Gloo has written its verdict into a resource file."""
    try:
        return "reportedBy: gloo" in path.read_text()
    except OSError:
        return False


def write_yaml(path: Path, document: Mapping[str, Any]) -> None:
    """Atomically (temporary sibling + rename), as Gloo's and our directory clients expect."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(dict(document), sort_keys=False))
    tmp.replace(path)


@dataclass(frozen=True)
class ControllerFigures:
    """From the controller's /metrics at the end of the run."""

    reconciles: int
    mean_reconcile_seconds: float
    writes: int


def controller_figures(probe_port: int) -> ControllerFigures:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{probe_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + float(sample.value)
    count = values.get("controller_runtime_reconcile_time_seconds_count", 0.0)
    total = values.get("controller_runtime_reconcile_time_seconds_sum", 0.0)
    return ControllerFigures(
        reconciles=int(count),
        mean_reconcile_seconds=total / count if count else 0.0,
        writes=int(values.get("proxycontroller_writes_total", 0.0)),
    )


@contextlib.contextmanager
def controller(
    work_dir: Path, config_dir: Path, listener_port: int, window: float
) -> Iterator[tuple[ManagedProcess, int]]:
    """`proxycontroller run --config-dir` as a user runs it; yields it and its probe port (/metrics)."""
    config = {
        "listener": {"bindAddress": "127.0.0.1", "bindPort": listener_port},
        "reconcile": {"coalesceWindowSeconds": window},
    }
    with controller_process(work_dir, ["--config-dir", str(config_dir)], config) as started:
        yield started


def wait_for_free_fixed_ports(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while busy := fixed_ports_in_use():
        if time.monotonic() > deadline:
            raise RuntimeError(f"port(s) {busy} still in use after {timeout:.0f}s: another Gloo is running")
        print(f"port(s) {busy} in use (another Gloo); waiting", file=sys.stderr)
        time.sleep(5)


class SupervisedGloo:
    """Gloo in directory mode, started again when it dies.

    Gloo 1.22.1's file client writes statuses (and the gateway's Proxy) with a plain truncate-and-write while its
    own polling watches list the same directories; a list that reads a file between the two sees an empty
    resource, and Gloo panics on its nil metadata (in listSingleNamespace's sort or UpstreamList.Find), leaving
    the files it was writing empty. `restart` repairs those (our files written again, Gloo's Proxies removed for
    their writers to recreate) and starts Gloo again; samples that a crash interrupted are taken again."""

    def __init__(self, binary: Path, tree: GlooDirectory, log_dir: Path, port_wait: float) -> None:
        self.binary = binary
        self.tree = tree
        self.log_dir = log_dir
        self.port_wait = port_wait
        self.written: dict[Path, Mapping[str, Any]] = {}
        self.crashes: list[str] = []
        self.process: ManagedProcess | None = None

    def write(self, plural: str, document: Mapping[str, Any]) -> None:
        metadata = document["metadata"]
        path = self.tree.path(plural, str(metadata["name"]), str(metadata["namespace"]))
        write_yaml(path, document)
        self.written[path] = document

    def remove(self, plural: str, name: str, namespace: str) -> bool:
        """Delete a resource file; whether it was there."""
        path = self.tree.path(plural, name, namespace)
        self.written.pop(path, None)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def alive(self) -> bool:
        return self.process is not None and self.process.running()

    def start(self) -> None:
        wait_for_free_fixed_ports(self.port_wait)
        log = self.log_dir / f"gloo-{len(self.crashes)}.log"
        self.process = gloo_directory_process(self.binary, self.tree, log)
        self.process.start()
        try:
            self.process.wait_ready(gloo_ready(self.tree.ports), 120)
        except BaseException:
            self.process.stop()
            raise

    def restart(self) -> None:
        assert self.process is not None
        lines = self.process.log_tail(80).splitlines()
        panic = next((i for i, line in enumerate(lines) if line.startswith("panic:")), None)
        if panic is None:
            self.crashes.append(f"exited without a panic message; log {self.process.log_path}")
        else:
            # The panic and the function it happened in (the first frame of the goroutine that panicked).
            frames = [line for line in lines[panic:] if line.startswith("github.com/")]
            where = re.sub(r"\((?:\{|0x|\)).*$", "", frames[0]) if frames else "?"
            self.crashes.append(f"{lines[panic]} in {where}")
        self.process.stop()
        for path in self.tree.config_dir.rglob("*.yaml"):
            if path.stat().st_size == 0:
                if path in self.written:
                    write_yaml(path, self.written[path])
                else:
                    path.unlink()
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def summary_row(label: str, values: Sequence[float]) -> list[object]:
    return [label, len(values), ms(statistics.median(values)), ms(min(values)), ms(max(values))]


def run(args: argparse.Namespace, work: Path) -> None:
    rng = random.Random(args.seed)
    refresh = args.refresh_rate
    gloo_binary = build_gloo()
    with contextlib.ExitStack() as stack:
        _, petstore_port = stack.enter_context(start_petstore(work / "petstore"))
        tree = write_directory_tree(
            work / "gloo", refresh_rate=refresh, watch_namespaces=(GLOO_SYSTEM, BENCH_NAMESPACE)
        )
        ours = Stage("ours", tree.proxy_path(OUR_PROXY), free_port(), GLOO_SYSTEM, with_virtual_service=False)
        gloos = Stage("Gloo's", tree.proxy_path(GATEWAY_PROXY), free_port(), BENCH_NAMESPACE, with_virtual_service=True)
        gloo = SupervisedGloo(gloo_binary, tree, work / "gloo", args.port_wait)
        gloo.write("gateways", gateway(gloos.listener_port))

        def add(stage: Stage, name: str) -> float:
            """Write a sample's files; its clock starts just before the Upstream file appears."""
            start = time.perf_counter()
            gloo.write("upstreams", static_upstream(name, stage.namespace, petstore_port))
            if stage.with_virtual_service:
                gloo.write("virtualservices", virtual_service(name, stage.namespace))
            return start

        def sample_files(stage: Stage, name: str) -> list[tuple[str, str]]:
            upstream = [("upstreams", name)]
            return [("virtualservices", name), *upstream] if stage.with_virtual_service else upstream

        def remove(stage: Stage, name: str) -> None:
            """Delete a sample's files and wait until Envoy no longer routes it: every sample starts from the same
            small, quiet tree (fewer files also means fewer of Gloo's racy status writes).

            Gloo writes its status into a file by read-then-write, so a file deleted meanwhile comes back: first
            wait (briefly) for those statuses, then delete, and delete again whatever reappears."""
            files = [tree.path(plural, n, stage.namespace) for plural, n in sample_files(stage, name)]
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not all(has_gloo_status(path) for path in files):
                time.sleep(0.05)
            time.sleep(0.2)
            deadline = time.monotonic() + args.timeout
            quiet_since: float | None = None
            while gloo.alive():
                reappeared = False
                for plural, n in sample_files(stage, name):
                    reappeared |= gloo.remove(plural, n, stage.namespace)
                now = time.monotonic()
                if reappeared or get(stage.url, name)[0] == 200:
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = now
                elif now - quiet_since > 0.5:
                    return
                if now > deadline:
                    raise SystemExit(f"{stage.label}: {name} still served {args.timeout:.0f}s after its removal")
                time.sleep(0.05)

        def warm(prefix: str) -> None:
            """Untimed: a fresh route on each path, served, proves both Envoys are connected to this Gloo."""
            for stage in (ours, gloos):
                name = f"{prefix}-{'ours' if stage is ours else 'gloo'}"
                wait_for_pets(stage, name, add(stage, name), args.timeout, gloo.alive)
                remove(stage, name)

        # The warm-up routes exist before Gloo starts and stay, so both Envoys get a snapshot at once (an Envoy
        # whose Proxy does not exist yet waits out its initial-fetch timeouts: 2 x 15 s) and keep their listeners.
        add(ours, "warmup-ours")
        add(gloos, "warmup-gloo")
        gloo.start()
        stack.callback(gloo.stop)
        _, probe_port = stack.enter_context(
            controller(work / "controller", tree.config_dir, ours.listener_port, args.coalesce_window)
        )
        envoys: list[Envoy] = [
            stack.enter_context(start_envoy(work / "envoy-ours", xds_port=tree.ports.xds, proxy_name=OUR_PROXY)),
            stack.enter_context(start_envoy(work / "envoy-gloo", xds_port=tree.ports.xds, proxy_name=GATEWAY_PROXY)),
        ]

        def logs() -> str:
            processes = [p for p in (gloo.process, *(e.process for e in envoys)) if p is not None]
            return "".join(f"\n--- {p.name} ({p.log_path}):\n{p.log_tail(15)}" for p in processes)

        def recover() -> None:
            """Start Gloo again after a crash (and again, if it crashes while warming up)."""
            while True:
                if len(gloo.crashes) >= args.max_crashes:
                    raise SystemExit(f"Gloo crashed more than {args.max_crashes} times: {gloo.crashes}{logs()}")
                gloo.restart()
                try:
                    warm(f"rewarm{len(gloo.crashes)}")
                    return
                except GlooDied:
                    continue

        def sample(stage: Stage, index: int) -> None:
            attempt = 0
            while True:
                name = f"bench-{'ours' if stage is ours else 'gloo'}-{index}" + (f"-retry{attempt}" if attempt else "")
                time.sleep(args.settle + rng.uniform(0, refresh_seconds(refresh)))
                try:
                    result = wait_for_pets(stage, name, add(stage, name), args.timeout, gloo.alive)
                except GlooDied as error:
                    print(f"  {error}; starting Gloo again and taking the sample again", file=sys.stderr)
                    recover()
                    remove(stage, name)
                    attempt += 1
                    continue
                except TimeoutError as error:
                    raise SystemExit(f"{error}{logs()}") from None
                stage.samples.append(result)
                proxy_note = (
                    f" (Proxy file after {ms(result.proxy_seconds)} ms)" if result.proxy_seconds is not None else ""
                )
                print(f"  {stage.label:>6} {name}: {ms(result.seconds)} ms{proxy_note}", file=sys.stderr)
                remove(stage, name)
                return

        try:
            for stage, name in ((ours, "warmup-ours"), (gloos, "warmup-gloo")):
                wait_for_pets(stage, name, time.perf_counter(), args.timeout, gloo.alive)
        except GlooDied:
            recover()
        for i in range(args.samples):
            for stage in (ours, gloos) if i % 2 == 0 else (gloos, ours):
                if not gloo.alive():  # died between samples: start it again before the next clock starts
                    recover()
                sample(stage, i)

        figures = controller_figures(probe_port)

    print_report(args, ours, gloos, tree, gloo.crashes, figures)


def refresh_seconds(refresh: str) -> float:
    """Settings.refreshRate (a protobuf Duration string such as "1s" or "0.5s") in seconds."""
    if refresh.endswith("ms"):
        return float(refresh[:-2]) / 1000
    if refresh.endswith("s"):
        return float(refresh[:-1])
    raise ValueError(f"refresh rate {refresh!r}: expected e.g. 1s, 0.5s or 200ms")


def print_report(
    args: argparse.Namespace,
    ours: Stage,
    gloos: Stage,
    tree: GlooDirectory,
    crashes: Sequence[str],
    figures: ControllerFigures,
) -> None:
    our_times = [s.seconds for s in ours.samples]
    gloo_times = [s.seconds for s in gloos.samples]
    header = ["path", "samples", "median ms", "min ms", "max ms"]
    rows = [
        summary_row("(a) ours: proxycontroller -> my-cool-proxy", our_times),
        summary_row("(b) Gloo's: VirtualService + Gateway -> gateway-proxy", gloo_times),
    ]
    ratio = statistics.median(our_times) / statistics.median(gloo_times)
    print()
    print("Upstream file -> first 200 with the pets through Envoy")
    print(table(header, rows))
    print()
    print(f"ratio ours / Gloo's (medians): {ratio:.2f}x (target <= 1.2x)")
    print()
    parts = []
    for stage, what in (
        (ours, "controller writes my-cool-proxy"),
        (gloos, "Gloo's gateway translator writes gateway-proxy"),
    ):
        seen = [s.proxy_seconds for s in stage.samples if s.proxy_seconds is not None]
        if seen:
            parts.append(summary_row(f"{stage.label}: upstream file -> {what}", seen))
            rest = [s.seconds - s.proxy_seconds for s in stage.samples if s.proxy_seconds is not None]
            parts.append(summary_row(f"{stage.label}: Proxy file -> first 200 (Gloo + Envoy)", rest))
    if parts:
        print("Breakdown (the Proxy file first routing the new upstream)")
        print(table(header, parts))
        print()
    settings = tree.settings
    print("Gloo Settings used (directory mode, gloo-system/default):")
    print(
        f"  refreshRate: {settings['refreshRate']}, watchNamespaces: {settings['watchNamespaces']}, "
        f"gateway: {settings['gateway']}, gloo.removeUnusedFilters: {settings['gloo']['removeUnusedFilters']}, "
        f"gloo.disableKubernetesDestinations: {settings['gloo']['disableKubernetesDestinations']}"
    )
    print(
        f"Controller: reconcile.coalesceWindowSeconds = {args.coalesce_window}; over the run "
        f"{figures.reconciles} reconcile passes (mean {figures.mean_reconcile_seconds * 1000:.1f} ms each: "
        f"translate, diff, write + fsync), {figures.writes} Proxy writes"
    )
    print(f"Samples per path: {args.samples}, pause before each: {args.settle}s + uniform(0, refreshRate)")
    print(f"Gloo crashes during the run (restarted, interrupted samples taken again): {len(crashes)}")
    for crash in crashes:
        print(f"  {crash}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=5, help="new upstreams per path")
    parser.add_argument("--refresh-rate", default="1s", help="Gloo Settings.refreshRate (its file watch period)")
    parser.add_argument("--coalesce-window", type=float, default=0.1, help="controller reconcile.coalesceWindowSeconds")
    parser.add_argument(
        "--settle", type=float, default=0.5, help="seconds of quiet before each sample (after the last one's removal)"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one sample may take")
    parser.add_argument("--port-wait", type=float, default=300.0, help="seconds to wait for another Gloo to end")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-crashes", type=int, default=10, help="Gloo restarts allowed before giving up")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) afterwards")
    args = parser.parse_args(argv)
    refresh_seconds(args.refresh_rate)  # fail early on a bad value
    if args.keep:
        work = Path(tempfile.mkdtemp(prefix="upstream-to-traffic-"))
        print(f"work directory: {work}", file=sys.stderr)
        run(args, work)
    else:
        with tempfile.TemporaryDirectory(prefix="upstream-to-traffic-") as tmp:
            run(args, Path(tmp))


if __name__ == "__main__":
    main()
