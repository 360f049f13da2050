"""`proxycontroller render -f FILE` on what `kubectl get upstreams -A -o yaml` prints (one `kind: List` of N
Upstreams), beside the least a Python tool must do for the same job, side by side in one run.

Baseline: parse the same file with PyYAML's C loader (`yaml.load(..., Loader=yaml.CSafeLoader)`), build the
same Proxy from the items in a plain loop (the seed's makeDesiredProxy: one virtual host per upstream) and print
it with PyYAML's C dumper (`yaml.dump_all(..., Dumper=yaml.CSafeDumper)`). Both run as processes started from
scratch, output to a file, so both pay an interpreter start (the baseline's imports are only PyYAML's). The
baseline's document must equal the one render printed (checked after every run, as is that render's routes
every upstream to itself). Target: render <= 1.2x the baseline. Peak memory: each process's ru_maxrss.

Run: .venv/bin/python -m benchmarks.render [--quick] [--sizes 10000 50000] [--controller-rev REV]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import ControllerSource, controller_source, proxycontroller_command, ratio, table
from benchmarks.resources import NAMESPACE, check_routes_all

ITEM = """\
- apiVersion: gloo.solo.io/v1
  kind: Upstream
  metadata:
    creationTimestamp: "2026-11-25T10:00:00Z"
    generation: 1
    labels:
      discovered_by: kubernetesplugin
    name: default-{service}-8080
    namespace: {namespace}
    resourceVersion: "{version}"
    uid: {uid}
  spec:
    discoveryMetadata:
      labels:
        app: {service}
    kube:
      selector:
        app: {service}
      serviceName: {service}
      serviceNamespace: default
      servicePort: 8080
  status:
    statuses:
      {namespace}:
        reportedBy: gloo
        state: 1
"""


def write_kubectl_list(path: Path, count: int) -> list[str]:
    """What `kubectl get upstreams -A -o yaml` prints for `count` Upstreams that Gloo's discovery created
    (sorted keys, sequences not indented); returns their names."""
    with path.open("w") as stream:
        stream.write("apiVersion: v1\nitems:\n")
        for i in range(count):
            service = f"service-{i:05d}"
            stream.write(ITEM.format(service=service, namespace=NAMESPACE, version=1000 + i, uid=uuid.UUID(int=i)))
        stream.write('kind: List\nmetadata:\n  resourceVersion: ""\n')
    return [f"default-service-{i:05d}-8080" for i in range(count)]


# -- the comparison ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mib: float
    stderr: str


def run_process(args: list[str], output: Path, env: dict[str, str]) -> Run:
    """Wall time and peak RSS (ru_maxrss from wait4) of one process, stdout to `output`."""
    with output.open("wb") as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env={**os.environ, **env})
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{args[:3]} exited {process.returncode}:\n{stderr[-2000:]}")
    return Run(seconds, usage.ru_maxrss / 1024, stderr)


def load_stream(path: Path) -> list[Any]:
    with path.open("rb") as stream:
        return [d for d in yaml.load_all(stream, Loader=yaml.CSafeLoader) if d is not None]


@dataclass
class SizeResult:
    upstreams: int
    input_mib: float
    output_mib: float
    render: list[Run]
    baseline: list[Run]


def measure(source: ControllerSource, work: Path, count: int, repeat: int) -> SizeResult:
    input_path = work / f"upstreams-{count}.yaml"
    names = write_kubectl_list(input_path, count)
    render_out, baseline_out = work / f"render-{count}.yaml", work / f"baseline-{count}.yaml"
    render_args = [*proxycontroller_command(), "render", "-f", str(input_path)]
    metadata_path = work / "metadata.json"
    baseline_args = [sys.executable, "-m", "benchmarks.render_baseline", str(input_path), str(metadata_path)]
    baseline_env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = SizeResult(count, input_path.stat().st_size / 2**20, 0.0, [], [])
    first: dict[str, bytes] = {}
    rendered: list[Any] = []
    for i in range(repeat):
        # Render goes first in the first round (the baseline's Proxy takes its metadata from render's); after
        # that the order alternates, so that neither always meets a warmer page cache or a quieter machine.
        order = [
            ("render", render_args, render_out, source.env()),
            ("baseline", baseline_args, baseline_out, baseline_env),
        ]
        for which, args, out, env in order if i % 2 == 0 else order[::-1]:
            run = run_process(args, out, env)
            (result.render if which == "render" else result.baseline).append(run)
            output = out.read_bytes()
            if which in first:
                if output != first[which]:
                    raise AssertionError(f"{which} printed something else than in its first run")
                continue
            first[which] = output
            documents = load_stream(out)
            if which == "render":
                if len(documents) != 1:
                    raise AssertionError(f"render printed {len(documents)} documents, expected one Proxy")
                check_routes_all(documents[0]["spec"], names)
                metadata_path.write_text(json.dumps(documents[0]["metadata"]))
                result.output_mib = len(output) / 2**20
                rendered = documents
            elif documents != rendered:
                raise AssertionError("the baseline's Proxy differs from render's")
        print(
            f"  {count}: render {result.render[-1].seconds:.2f}s, baseline {result.baseline[-1].seconds:.2f}s",
            flush=True,
        )
    return result


def report(results: list[SizeResult]) -> None:
    rows: list[tuple[object, ...]] = []
    for r in results:
        render_s = statistics.median(run.seconds for run in r.render)
        baseline_s = statistics.median(run.seconds for run in r.baseline)
        phases = [json.loads(run.stderr.strip().splitlines()[-1]) for run in r.baseline]
        parse, dump = (statistics.median(p[key] for p in phases) for key in ("parse", "dump"))
        rows.append(
            (
                f"{r.upstreams:,}",
                f"{r.input_mib:.1f} / {r.output_mib:.1f}",
                f"{render_s:.2f}",
                f"{min(run.seconds for run in r.render):.2f}",
                f"{baseline_s:.2f}",
                f"{parse:.2f} + {dump:.2f}",
                ratio(render_s, baseline_s),
                "met" if render_s <= 1.2 * baseline_s else "NOT met",
                f"{max(run.peak_mib for run in r.render):.0f}",
                f"{max(run.peak_mib for run in r.baseline):.0f}",
            )
        )
    print()
    print(
        table(
            (
                "upstreams",
                "input / output MiB",
                "render s (median)",
                "render s (min)",
                "baseline s (median)",
                "of which parse + dump s",
                "render / baseline",
                "<= 1.2x",
                "render peak MiB",
                "baseline peak MiB",
            ),
            rows,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run: 2k and 10k upstreams, one run each")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--repeat", type=int, help="runs of each per size (default: 3 up to 10k upstreams, else 2)")
    parser.add_argument("--controller-rev", help="measure this commit's src/ (git archive) instead of the working tree")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeat = [2_000, 10_000], 1
    with contextlib.ExitStack() as stack:
        source = controller_source(args.controller_rev, stack)
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-render-")))
        print(f"controller: {source.description}", flush=True)
        report([measure(source, work, count, args.repeat or (3 if count <= 10_000 else 2)) for count in args.sizes])


if __name__ == "__main__":
    main()
