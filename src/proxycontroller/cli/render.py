"""`proxycontroller render`: the Proxies the controller would write for some Upstream files."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from proxycontroller.config import SERVICES, ControllerConfig
from proxycontroller.model.desired import as_resource
from proxycontroller.model.documents import DocumentError, SourcedUpstream, dump_yaml_stream, parse_upstreams
from proxycontroller.model.encoding import to_cr
from proxycontroller.model.limits import DEFAULT_LIMITS, InputLimits, InputTooLarge, read_bounded
from proxycontroller.model.resources import ObjectKey, Service
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.validate.desired import ProxyLogic
from proxycontroller.validate.gateway_desired import GatewayLogic

_SUFFIXES = (".yaml", ".yml", ".json")


def _files_under(path: Path) -> Iterator[Path]:
    if path.is_dir():
        # Sorted, so the same tree always gives the same order of inputs and the same warnings.
        for child in sorted(path.rglob("*")):
            if child.is_file() and child.suffix in _SUFFIXES:
                yield child
    elif path.exists():
        yield path
    else:
        raise DocumentError(str(path), None, "no such file or directory")


def _decoded(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(source, None, f"not UTF-8 text: {exc.reason} at byte {exc.start}") from exc


def _read_file(file: Path, limit: int) -> bytes:
    try:
        with open(file, "rb") as stream:
            return read_bounded(stream, limit, "limits.maxInputBytes")
    except OSError as exc:
        raise DocumentError(str(file), None, f"cannot read: {exc.strerror or exc}") from exc
    except InputTooLarge as exc:
        raise DocumentError(str(file), None, str(exc)) from exc


def read_upstreams(
    paths: tuple[str, ...],
    limits: InputLimits = DEFAULT_LIMITS,
    stdin: BinaryIO | None = None,
    services: list[Service] | None = None,
) -> list[SourcedUpstream]:
    """Every Upstream in the given files, directories (recursively) and stdin (`-`), each input read up to
    `limits.max_input_bytes`; and every Service into `services`, if given."""
    found: list[SourcedUpstream] = []
    for raw in paths:
        if raw == "-":
            try:
                data = read_bounded(stdin or sys.stdin.buffer, limits.max_input_bytes, "limits.maxInputBytes")
            except InputTooLarge as exc:
                raise DocumentError("<stdin>", None, str(exc)) from exc
            found.extend(parse_upstreams(_decoded(data, "<stdin>"), "<stdin>", limits=limits, services=services))
            continue
        for file in _files_under(Path(raw)):
            text = _decoded(_read_file(file, limits.max_input_bytes), str(file))
            flat = "upstreams" in file.parts
            found.extend(parse_upstreams(text, str(file), flat_hint=flat, limits=limits, services=services))
    return found


def deduplicate(found: list[SourcedUpstream]) -> tuple[list[SourcedUpstream], list[str]]:
    """The same namespace/name twice in the input: the first wins, the later ones are named in a warning."""
    first: dict[ObjectKey, SourcedUpstream] = {}
    warnings = []
    for item in found:
        key = item.upstream.key
        if key in first:
            earlier = first[key]
            warnings.append(
                f"{item.source}: document {item.position}: Upstream {key} is also defined in "
                f"{earlier.source}: document {earlier.position}; keeping the first"
            )
            continue
        first[key] = item
    return list(first.values()), warnings


def _if_routed(config: ControllerConfig, services: list[Service]) -> list[Service] | None:
    return services if SERVICES in config.sources else None


def render(paths: tuple[str, ...], config: ControllerConfig, output: str) -> tuple[str, list[str]]:
    """`output`: yaml or json (what the configuration's `output` writes), or gateway-api (the HTTPRoutes and
    ReferenceGrants `output: gateway-api` would write, as YAML, whatever the configuration's `output`: to
    compare before switching)."""
    services: list[Service] = []  # read only when the configuration routes them (sources)
    found, warnings = deduplicate(read_upstreams(paths, config.limits, services=_if_routed(config, services)))
    snapshot = Snapshot.of([item.upstream for item in found], services)
    gateway_api = output == "gateway-api" or config.output == "gateway-api"
    state = (GatewayLogic(config) if gateway_api else ProxyLogic(config)).desired(snapshot)
    documents = [to_cr(as_resource(item)) for item in state.objects]
    if output == "json":
        body = documents[0] if len(documents) == 1 else {"apiVersion": "v1", "kind": "List", "items": documents}
        text = json.dumps(body, indent=2) + "\n"
    else:
        text = dump_yaml_stream(documents)
    return text, [*warnings, *state.warnings]
