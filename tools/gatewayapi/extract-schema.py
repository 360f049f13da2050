#!/usr/bin/env python3
"""Writes src/proxycontroller/validate/gatewayapi_schema.json: the OpenAPI v3 schemas of the spec of HTTPRoute
(v1) and ReferenceGrant (v1beta1) from the Gateway API standard CRDs, without descriptions (a tenth of the size).

Usage: tools/gatewayapi/extract-schema.py <gateway-api>/config/crd/standard  (build.sh kgateway prints the path
as GATEWAY_API_CRDS). tests/gateway/test_gatewayapi_schema.py checks the shipped file equals this output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

OUT = Path(__file__).resolve().parents[2] / "src" / "proxycontroller" / "validate" / "gatewayapi_schema.json"
WANTED = {"HTTPRoute": "v1", "ReferenceGrant": "v1beta1"}


def _stripped(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _stripped(value) for key, value in node.items() if key != "description"}
    if isinstance(node, list):
        return [_stripped(item) for item in node]
    return node


def extract(crd_dir: Path) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for path in sorted(crd_dir.glob("gateway.networking.k8s.io_*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            kind = doc["spec"]["names"]["kind"]
            if kind not in WANTED:
                continue
            for version in doc["spec"]["versions"]:
                if version["name"] == WANTED[kind]:
                    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
                    schemas[kind] = {"version": WANTED[kind], "spec": _stripped(spec)}
    return schemas


def render(crd_dir: Path) -> str:
    return json.dumps(extract(crd_dir), sort_keys=True, indent=None, separators=(",", ":")) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(Path(sys.argv[1])))
    print(f"wrote {OUT}")
