"""The baseline of benchmarks/render.py, run as its own process (so it imports nothing but PyYAML):

    python -m benchmarks.render_baseline UPSTREAMS.yaml METADATA.json > proxy.yaml

Parses the Upstreams with PyYAML's C loader, builds the seed's Proxy in a plain loop (one virtual host per
upstream of gloo-system, sorted by name as render orders them, with the given metadata) and prints it with
PyYAML's C dumper. The phases' times go to stderr as one JSON line.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

NAMESPACE = "gloo-system"


def seed_proxy(names: list[str], metadata: dict[str, Any]) -> dict[str, Any]:
    virtual_hosts = [
        {
            "name": name,
            "domains": [name],
            "routes": [
                {
                    "matchers": [{"prefix": "/"}],
                    "routeAction": {"single": {"upstream": {"name": name, "namespace": NAMESPACE}}},
                }
            ],
        }
        for name in names
    ]
    return {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Proxy",
        "metadata": metadata,
        "spec": {
            "listeners": [
                {
                    "name": "my-amazing-listener",
                    "bindAddress": "::",
                    "bindPort": 8080,
                    "httpListener": {"virtualHosts": virtual_hosts},
                }
            ]
        },
    }


# The collector thresholds `proxycontroller` sets at its entry point (cli/main.py tune_gc). With Python's defaults
# the C loader alone takes twice as long on these inputs (the collector walks the growing heap again and again);
# a fair baseline gets the same setting.
GC_THRESHOLDS = (50_000, 20, 100)


def main() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    input_path, metadata_path = Path(sys.argv[1]), Path(sys.argv[2])
    metadata = json.loads(metadata_path.read_text())
    start = time.perf_counter()
    with input_path.open("rb") as stream:
        documents = [d for d in yaml.load_all(stream, Loader=yaml.CSafeLoader) if d]
    parsed = time.perf_counter()
    names = sorted(
        item["metadata"]["name"]
        for document in documents
        for item in document.get("items", [document])
        if item.get("kind") == "Upstream" and item["metadata"].get("namespace") == NAMESPACE
    )
    proxy = seed_proxy(names, metadata)
    built = time.perf_counter()
    yaml.dump_all([proxy], sys.stdout, Dumper=yaml.CSafeDumper, sort_keys=False, explicit_start=True)
    sys.stdout.flush()
    dumped = time.perf_counter()
    print(json.dumps({"parse": parsed - start, "build": built - parsed, "dump": dumped - built}), file=sys.stderr)


if __name__ == "__main__":
    main()
