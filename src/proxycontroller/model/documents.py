"""Text to resources: multi-document YAML or JSON, in Gloo's CR form or its flat form.

Pure parsing, no file access: callers pass the text and a name for it (a path, or `-` for stdin) so that
every error names where it comes from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from proxycontroller.model.encoding import DecodeError, from_cr, from_flat
from proxycontroller.model.limits import (
    DEFAULT_LIMITS,
    InputLimits,
    InputTooLarge,
    check_alias_expansion,
    may_hold_aliases,
    read_bounded,
)
from proxycontroller.model.resources import SERVICE, UPSTREAM, Service, Upstream

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# The keys that make a flat (kind-less) document an Upstream: its upstream types, one of which is set.
UPSTREAM_TYPE_KEYS = frozenset({"kube", "static", "pipe", "aws", "awsEc2", "azure", "consul", "gcp", "ai"})


class DocumentError(ValueError):
    """Input that cannot be read; `str()` is a one-line message naming the source and the document."""

    def __init__(self, source: str, position: int | None, problem: str) -> None:
        where = source if position is None else f"{source}: document {position}"
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class SourcedUpstream:
    upstream: Upstream
    source: str
    position: int


def _documents(text: str, source: str, limits: InputLimits) -> Iterator[tuple[int, Any]]:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            yield 1, json.loads(text)
        except json.JSONDecodeError as exc:
            raise DocumentError(source, 1, f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
        return
    position = 0
    aliases = may_hold_aliases(text)
    try:
        for position, document in enumerate(yaml.load_all(text, Loader=_Loader), start=1):
            if aliases:
                try:
                    check_alias_expansion(document, limits.max_alias_nodes)
                except InputTooLarge as exc:
                    raise DocumentError(source, position, str(exc)) from exc
            yield position, document
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DocumentError(source, position + 1, f"not valid YAML{line}: {problem}") from exc


def _expand_lists(document: Any) -> Iterator[Any]:
    """`kubectl get -o yaml` wraps several objects in a List (`items`); a JSON array is a list too."""
    if isinstance(document, list):
        for item in document:
            yield from _expand_lists(item)
    elif isinstance(document, dict) and str(document.get("kind", "")).endswith("List") and "items" in document:
        for item in document.get("items") or []:
            yield from _expand_lists(item)
    else:
        yield document


def _as_upstream(document: dict[str, Any], source: str, position: int, flat_hint: bool) -> Upstream | None:
    try:
        if "kind" in document or "apiVersion" in document:
            if document.get("kind") != UPSTREAM.kind or document.get("apiVersion") != UPSTREAM.api_version:
                return None  # another kind of resource: not ours to read
            return from_cr(Upstream, document)
        if flat_hint or UPSTREAM_TYPE_KEYS & document.keys():
            return from_flat(Upstream, document)
    except DecodeError as exc:
        raise DocumentError(source, position, str(exc)) from exc
    return None


def _as_service(document: dict[str, Any], source: str, position: int) -> Service | None:
    if document.get("kind") != SERVICE.kind or document.get("apiVersion") != SERVICE.api_version:
        return None
    try:
        return from_cr(Service, document)
    except DecodeError as exc:
        raise DocumentError(source, position, str(exc)) from exc


def parse_upstreams(
    text: str,
    source: str,
    flat_hint: bool = False,
    limits: InputLimits = DEFAULT_LIMITS,
    services: list[Service] | None = None,
) -> list[SourcedUpstream]:
    """The Upstreams in a text; other kinds are skipped. `flat_hint`: a kind-less document is an Upstream
    even without an upstream type key (it lies under Gloo's `upstreams/` directory). `services`: where the
    text's core/v1 Services go, if they are wanted."""
    found = []
    for position, document in _documents(text, source, limits):
        for item in _expand_lists(document):
            if item is None:
                continue  # an empty document, e.g. a trailing `---`
            if not isinstance(item, dict):
                raise DocumentError(source, position, f"expected a mapping, got {type(item).__name__}")
            upstream = _as_upstream(item, source, position, flat_hint)
            if upstream is not None:
                found.append(SourcedUpstream(upstream, source, position))
            elif services is not None and (service := _as_service(item, source, position)) is not None:
                services.append(service)
    return found


_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml_stream(documents: list[dict[str, Any]]) -> str:
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False, explicit_start=True)


def dump_yaml(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def load_yaml(text: str, limits: InputLimits = DEFAULT_LIMITS) -> Any:
    """One YAML document. Raises yaml.YAMLError, or InputTooLarge when aliases expand it past the limit."""
    document = yaml.load(text, Loader=_Loader)
    if may_hold_aliases(text):
        check_alias_expansion(document, limits.max_alias_nodes)
    return document


def read_yaml_file(path: Path, limits: InputLimits = DEFAULT_LIMITS) -> Any:
    """The one YAML document in a file the user names (a configuration, a kubeconfig), read within
    `limits.max_file_bytes` and the alias bound. Raises DocumentError naming the file and what is wrong."""
    try:
        with open(path, "rb") as file:
            return load_yaml(read_bounded(file, limits.max_file_bytes, "limits.maxFileBytes").decode("utf-8"), limits)
    except OSError as exc:
        raise DocumentError(str(path), None, f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DocumentError(str(path), None, f"not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except InputTooLarge as exc:
        raise DocumentError(str(path), None, str(exc)) from exc
    except yaml.YAMLError as exc:
        raise DocumentError(str(path), None, f"not valid YAML: {' '.join(str(exc).split())}") from exc
