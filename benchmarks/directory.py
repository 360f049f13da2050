"""Directory mode (Gloo's `--dir` layout, no cluster): one upstream file change until the Proxy file on disk
routes it, with 20k upstream files present, beside the floor of one atomic write of that same Proxy file.

The controller runs as users run it: `proxycontroller run --config-dir DIR`. A change is a new Upstream file
(written to a dot-file and renamed into place, as an atomic writer does); the clock starts just before that
write and stops when a poll of the Proxy file's stat (every millisecond) sees the version that routes it (the
poll reads the file only when its stat changed). Floor, measured in the same run after the controller has
stopped: one atomic write of the Proxy file's final bytes (a temporary file in the same directory, write,
fsync, rename over it). Target: change <= 2x floor.

Run: .venv/bin/python -m benchmarks.directory [--quick] [--upstreams 20000] [--controller-rev REV]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import (
    ControllerSource,
    assert_running,
    controller_process,
    controller_source,
    ms,
    ratio,
    spread,
    table,
    vm_hwm_kib,
)
from benchmarks.resources import NAMESPACE, PROXY_NAME, check_routes_all, names_token, upstream_flat

POLL = 0.001
PAUSE = 1.5


def write_atomically(path: Path, data: bytes) -> None:
    """Temporary dot-file in the same directory (Gloo and the controller skip dot-files), fsync, rename."""
    temp = path.with_name(f".{path.name}.bench.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)


def parse_proxy(data: bytes) -> dict[str, Any]:
    """A Proxy file in Gloo's flat form, written as YAML or as JSON (which is YAML); returns its spec part."""
    try:
        document = json.loads(data)
    except ValueError:
        document = yaml.load(data, Loader=yaml.CSafeLoader)
    if not isinstance(document, dict):
        raise AssertionError("the Proxy file holds no object")
    return {k: v for k, v in document.items() if k not in ("metadata", "namespacedStatuses", "status")}


def signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def wait_for(path: Path, name: str | None, timeout: float, seen: tuple[int, int, int] | None = None) -> float:
    """Poll the file's stat; return the moment a version (other than `seen`) appeared that names `name`
    (any version when `name` is None)."""
    deadline = time.monotonic() + timeout
    last = seen
    while time.monotonic() < deadline:
        current = signature(path)
        if current is not None and current != last:
            noticed = time.monotonic()
            last = current
            with contextlib.suppress(FileNotFoundError):
                if name is None or names_token(path.read_bytes(), name):
                    return noticed
        time.sleep(POLL)
    raise TimeoutError(f"{path} did not route {name} within {timeout:.0f}s")


def routes_all(path: Path, names: list[str], timeout: float) -> float:
    """The moment the Proxy file routes every name (checked in full on each new version)."""
    deadline = time.monotonic() + timeout
    last: tuple[int, int, int] | None = None
    while time.monotonic() < deadline:
        current = signature(path)
        if current is not None and current != last:
            noticed = time.monotonic()
            last = current
            try:
                check_routes_all(parse_proxy(path.read_bytes()), names)
                return noticed
            except (AssertionError, FileNotFoundError, ValueError, yaml.YAMLError):
                pass
        time.sleep(0.05)
    raise TimeoutError(f"{path} did not route all {len(names)} upstreams within {timeout:.0f}s")


def run(source: ControllerSource, work: Path, count: int, samples: int, log_level: str) -> None:
    config_dir = work / "config"
    upstreams = config_dir / "upstreams" / NAMESPACE
    proxies = config_dir / "proxies" / NAMESPACE
    upstreams.mkdir(parents=True)
    proxies.mkdir(parents=True)
    names = [f"default-service-{i:05d}-8080" for i in range(count)]
    for name in names:
        (upstreams / f"{name}.yaml").write_text(upstream_flat(name))
    proxy_file = proxies / f"{PROXY_NAME}.yaml"
    changes: list[float] = []
    backend = ["--config-dir", str(config_dir)]
    with controller_process(source, work / "controller", backend, log_level=log_level) as controller:
        start = time.monotonic()
        converged = routes_all(proxy_file, names, timeout=600)
        print(
            f"  {count}: the Proxy file routes all {converged - start:.1f}s after start "
            f"({proxy_file.stat().st_size / 2**20:.1f} MiB)",
            flush=True,
        )
        time.sleep(2 * PAUSE)
        for i in range(samples):
            name = f"probe-{i}"
            seen = signature(proxy_file)
            began = time.monotonic()
            write_atomically(upstreams / f"{name}.yaml", upstream_flat(name).encode())
            changes.append(wait_for(proxy_file, name, timeout=120, seen=seen) - began)
            names.append(name)
            print(f"  sample {i}: {ms(changes[-1])} ms", flush=True)
            time.sleep(PAUSE)
        assert_running(controller.process)
        peak_mib = vm_hwm_kib(controller.process.pid) / 1024
    final = proxy_file.read_bytes()
    check_routes_all(parse_proxy(final), names)
    floors: list[float] = []
    for _ in range(samples + 2):
        before = proxy_file.stat().st_ino
        began = time.monotonic()
        write_atomically(proxy_file, final)
        floors.append(time.monotonic() - began)
        if proxy_file.stat().st_ino == before:
            raise AssertionError("the floor's rename did not replace the Proxy file")
        time.sleep(0.2)
    if proxy_file.read_bytes() != final:
        raise AssertionError("the floor's write did not leave the same bytes")
    change, floor = statistics.median(changes), statistics.median(floors)
    print(f"\nDirectory mode, {count} upstream files, Proxy file {len(final) / 2**20:.1f} MiB:")
    print(
        table(
            ("what", "samples", "median ms", "min ms", "max ms", "/ floor"),
            [
                ("change -> Proxy file routes it", len(changes), *spread(changes), ratio(change, floor)),
                ("floor: atomic write of its bytes", len(floors), *spread(floors), "1.00x"),
            ],
        )
    )
    print(f"target <= 2x: {'met' if change <= 2 * floor else 'NOT met'}; controller VmHWM {peak_mib:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run: 2k upstream files, 3 samples")
    parser.add_argument("--upstreams", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=7)
    parser.add_argument("--controller-rev", help="measure this commit's src/ (git archive) instead of the working tree")
    parser.add_argument("--keep", type=Path, help="work directory to keep (logs), instead of a temporary one")
    parser.add_argument("--log-level", default="info", help="the controller's --log-level (its log is in the work dir)")
    args = parser.parse_args()
    if args.quick:
        args.upstreams, args.samples = 2_000, 3
    with contextlib.ExitStack() as stack:
        source = controller_source(args.controller_rev, stack)
        work = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-directory-")))
        print(f"controller: {source.description}", flush=True)
        run(source, work, args.upstreams, args.samples, args.log_level)


if __name__ == "__main__":
    main()
