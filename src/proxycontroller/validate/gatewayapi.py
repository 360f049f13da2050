"""Each HTTPRoute and ReferenceGrant checked against the Gateway API CRDs' OpenAPI schema before it is written.

The schema is package data (`gatewayapi_schema.json`): the spec schemas of the v1.6.1 standard CRDs with their
descriptions removed (32 KB), extracted by tools/gatewayapi/extract-schema.py; a test compares it with the
CRDs the test cluster installs. It is shipped rather than read from the cluster because `render` has no cluster,
and a controller that could only check against what the API server says would find a bad route by a write
that fails and is retried forever. jsonschema checks the OpenAPI part (types, required fields, patterns,
enums, maxItems, maxLength); the CRDs' CEL rules (`x-kubernetes-validations`) are not JSON Schema, so the few
a conversion could break are checked here in code: the matches of a route (at most 128) and ReplacePrefixMatch
only in a rule of exactly one PathPrefix match.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

_SCHEMA_FILE = "gatewayapi_schema.json"
MAX_MATCHES_PER_ROUTE = 128


class SchemaCheck:
    """The validators, built once per controller (compiling the HTTPRoute schema takes a few milliseconds)."""

    def __init__(self) -> None:
        text = resources.files("proxycontroller.validate").joinpath(_SCHEMA_FILE).read_text()
        schemas = json.loads(text)
        self.versions = {kind: entry["version"] for kind, entry in schemas.items()}
        self._validators = {kind: Draft202012Validator(entry["spec"]) for kind, entry in schemas.items()}

    def problems(self, kind: str, spec: dict[str, Any]) -> list[str]:
        """What the CRD of `kind` would refuse in `spec` (first few problems), as `spec.<path>: <why>`."""
        found = []
        for error in sorted(self._validators[kind].iter_errors(spec), key=lambda e: list(e.absolute_path))[:3]:
            path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
            found.append(f"spec{path}: {_short(error.message)}")
        if kind == "HTTPRoute" and not found:
            found += _route_rules(spec)
        return found


def _short(message: str) -> str:
    return message if len(message) <= 200 else message[:200] + "..."


def _route_rules(spec: dict[str, Any]) -> list[str]:
    """The CRD's CEL rules that a converted route could break."""
    problems = []
    rules = spec.get("rules") or []
    matches = sum(len(rule.get("matches") or [{}]) for rule in rules)
    if matches > MAX_MATCHES_PER_ROUTE:
        problems.append(f"spec.rules: {matches} matches in all, more than {MAX_MATCHES_PER_ROUTE}")
    for index, rule in enumerate(rules):
        filters = rule.get("filters") or []
        kinds = [f.get("type") for f in filters]
        if "RequestRedirect" in kinds and "URLRewrite" in kinds:
            problems.append(f"spec.rules[{index}].filters: RequestRedirect and URLRewrite exclude each other")
        if "RequestRedirect" in kinds and rule.get("backendRefs"):
            problems.append(f"spec.rules[{index}]: RequestRedirect and backendRefs exclude each other")
        replaces = any(
            ((f.get("urlRewrite") or f.get("requestRedirect") or {}).get("path") or {}).get("type")
            == "ReplacePrefixMatch"
            for f in filters
        )
        matched = rule.get("matches") or []
        if replaces and (len(matched) != 1 or (matched[0].get("path") or {}).get("type") != "PathPrefix"):
            problems.append(f"spec.rules[{index}]: ReplacePrefixMatch needs exactly one PathPrefix match")
    return problems
