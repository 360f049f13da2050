"""Gloo's three encodings of a resource, each read and written.

- CR: the Kubernetes custom resource, `apiVersion`/`kind`/`metadata`/`spec`/`status`.
- flat: the form of Gloo's directory config source: metadata and the spec fields side by side at the top
  level, the statuses under `namespacedStatuses`.
- compressed: a CR or flat spec replaced by `compressedSpec`, base64 of zlib of the JSON spec, announced by
  the annotation `gloo.solo.io/compress: "true"` (what Gloo itself reads and writes for large Proxies).
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any, TypeVar

from pydantic import ValidationError

from proxycontroller.model.canonical import CanonicalSpec
from proxycontroller.model.resources import Resource

COMPRESS_ANNOTATION = "gloo.solo.io/compress"
COMPRESSED_SPEC = "compressedSpec"
_COMPRESSED_SPEC_SNAKE = "compressed_spec"  # Gloo accepts both spellings on read
FLAT_STATUS = "namespacedStatuses"

R = TypeVar("R", bound=Resource)


class DecodeError(ValueError):
    """A document that is not a valid resource of the expected kind; the message says what is wrong."""


def spec_json(spec: dict[str, Any]) -> bytes:
    """The canonical JSON of a spec: sorted keys, no spaces, so equal specs give equal bytes."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()


def compress_spec(spec: dict[str, Any] | bytes) -> dict[str, Any]:
    """Gloo's compressed form of a spec, given as a dict or as its JSON already serialized."""
    raw = spec if isinstance(spec, bytes) else spec_json(spec)
    return {COMPRESSED_SPEC: base64.b64encode(zlib.compress(raw)).decode("ascii")}


def is_compressed(spec: dict[str, Any]) -> bool:
    return COMPRESSED_SPEC in spec or _COMPRESSED_SPEC_SNAKE in spec


def decompress_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec a `compressedSpec` stands for; other keys beside it are ignored, as Gloo does."""
    raw = spec.get(COMPRESSED_SPEC, spec.get(_COMPRESSED_SPEC_SNAKE))
    if not isinstance(raw, str):
        raise DecodeError(f"{COMPRESSED_SPEC} must be a base64 string, got {type(raw).__name__}")
    try:
        decoded = json.loads(zlib.decompress(base64.b64decode(raw, validate=True)))
    except (binascii.Error, zlib.error, ValueError) as exc:
        raise DecodeError(f"{COMPRESSED_SPEC} is not base64 of zlib-compressed JSON: {exc}") from exc
    if not isinstance(decoded, dict):
        raise DecodeError(f"{COMPRESSED_SPEC} holds {type(decoded).__name__}, not an object")
    return decoded


def _build(cls: type[R], metadata: Any, spec: Any, status: Any) -> R:
    if not isinstance(metadata, dict) or not metadata.get("name"):
        raise DecodeError(f"{cls.KIND.kind} has no metadata.name")
    if not isinstance(spec, dict):
        raise DecodeError(f"{cls.KIND.kind} {metadata.get('namespace', '')}/{metadata['name']}: spec is not an object")
    if is_compressed(spec) and not cls.KEEPS_COMPRESSED:
        spec = decompress_spec(spec)
    fields: dict[str, Any] = {"metadata": metadata, "spec": spec}
    if status is not None:
        fields["status"] = status
    try:
        return cls.model_validate(fields)
    except ValidationError as exc:
        where = f"{cls.KIND.kind} {metadata.get('namespace', '')}/{metadata['name']}"
        raise DecodeError(f"{where}: {_first_error(exc)}") from exc


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"])
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{location}: {error['msg']}{more}"


def _dump_spec(resource: Resource, compress: bool) -> dict[str, Any]:
    # Compressed: straight from the JSON bytes, never through Python dicts (a 10k-host spec is 2 MB).
    spec = resource.spec
    if not compress:
        return spec.to_json_dict()
    if isinstance(spec, CanonicalSpec):
        return {COMPRESSED_SPEC: spec.compressed}  # computed once per spec, however often it is written
    return compress_spec(spec.to_json_bytes())


def _with_compress_annotation(metadata: dict[str, Any], compress: bool) -> dict[str, Any]:
    if not compress:
        return metadata
    annotations = dict(metadata.get("annotations") or {})
    annotations[COMPRESS_ANNOTATION] = "true"
    return {**metadata, "annotations": annotations}


def from_cr(cls: type[R], document: dict[str, Any]) -> R:
    expected = cls.KIND
    if document.get("kind") != expected.kind or document.get("apiVersion") != expected.api_version:
        raise DecodeError(
            f"expected {expected.api_version} {expected.kind}, got {document.get('apiVersion')} {document.get('kind')}"
        )
    return _build(cls, document.get("metadata"), document.get("spec", {}), document.get("status"))


def to_cr(resource: Resource, compress: bool = False) -> dict[str, Any]:
    metadata = _with_compress_annotation(resource.metadata.to_json_dict(), compress)
    document: dict[str, Any] = {
        "apiVersion": resource.KIND.api_version,
        "kind": resource.KIND.kind,
        "metadata": metadata,
        "spec": _dump_spec(resource, compress),
    }
    if resource.status is not None:
        document["status"] = resource.status.to_json_dict()
    return document


def from_flat(cls: type[R], document: dict[str, Any]) -> R:
    spec = {key: value for key, value in document.items() if key not in ("metadata", FLAT_STATUS)}
    return _build(cls, document.get("metadata"), spec, document.get(FLAT_STATUS))


def to_flat(resource: Resource, compress: bool = False) -> dict[str, Any]:
    document: dict[str, Any] = {"metadata": _with_compress_annotation(resource.metadata.to_json_dict(), compress)}
    document.update(_dump_spec(resource, compress))
    if resource.status is not None:
        document[FLAT_STATUS] = resource.status.to_json_dict()
    return document


def wants_compression(resource: Resource) -> bool:
    annotations = resource.metadata.annotations or {}
    return annotations.get(COMPRESS_ANNOTATION) == "true"
