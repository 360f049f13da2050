"""What a file holds: bytes to a resource and back, in Gloo's flat form, and the version counter inside it.

- Identity is the path, and the file must agree with it. solo-kit selects files by directory but takes the
  object's name and namespace from the file's metadata, while reads and writes (its and ours) go by path. When the
  two disagree every choice is wrong somewhere: trusting the path would route to an object Gloo knows by another
  name (and Gloo rejects a Proxy naming an unknown Upstream); trusting the metadata would give keys that `get`,
  `replace` and `delete` cannot reach, or two files claiming one key. So such a file is unreadable, like a
  malformed one, until it is fixed. That includes a missing `metadata.namespace`: Gloo reads it as namespace "".
- resourceVersion is a counter kept in the file, exactly as solo-kit's file client does it (see
  `next_resource_version`), so our optimistic writes and Gloo's status writes detect each other.
- Proxies are always written uncompressed: solo-kit's file client has no `compressedSpec` handling (only its kube
  client does), so Gloo would read a compressed file as a Proxy with no listeners. Reading accepts both.
- Large objects are JSON. A Proxy with 20k virtual hosts is ~4.5 MB: PyYAML's C loader parses it in seconds,
  msgspec's JSON decoder in tens of milliseconds. JSON is YAML, so Gloo's file client reads it all the same; small
  objects stay YAML, the form people read and edit by hand.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
import yaml

from proxycontroller.model.canonical import CanonicalSpec
from proxycontroller.model.documents import dump_yaml, load_yaml
from proxycontroller.model.encoding import DecodeError, from_flat, to_flat
from proxycontroller.model.limits import InputLimits, InputTooLarge
from proxycontroller.model.resources import ObjectKey, Resource

R = TypeVar("R", bound=Resource)

JSON_ABOVE_BYTES = 64 * 1024  # objects whose encoding is larger are written as compact JSON

_JSON_START = re.compile(rb"\s*\{")
_NO_SPEC = CanonicalSpec(json=b"{}")  # stands for a spec spliced in as bytes
_GO_INT = re.compile(r"[+-]?[0-9]+")
_GO_INT_RANGE = range(-(2**63), 2**63)
_TOO_DEEP = "nested too deeply"


class Unreadable(Exception):
    """A file that is not a valid resource of the kind at its path; the message says why, without the path."""


class BeyondLimits(Unreadable):
    """A file not read whole because it goes beyond the limits of what this store reads (its size, how far its
    aliases expand): what it holds, its labels included, is not known."""


def next_resource_version(current: str | None) -> str:
    """The version a write stores: solo-kit's file client's `newOrIncrementResourceVer`.

    It is `strconv.Atoi(current) + 1`, and anything Atoi rejects (missing, empty, not a number, out of int64)
    counts as 1, so a new object and a hand-written file without a version both get "2" on their first write.
    """
    if current is not None and _GO_INT.fullmatch(current) and int(current) in _GO_INT_RANGE:
        return str(int(current) + 1)
    return "2"


def with_version(resource: R, version: str) -> R:
    metadata = resource.metadata.model_copy(update={"resource_version": version})
    return resource.model_copy(update={"metadata": metadata})


def encode(resource: Resource) -> bytes:
    spec = resource.spec
    if isinstance(spec, CanonicalSpec) and len(spec.json) > JSON_ABOVE_BYTES:
        # The spec's canonical bytes go in as they are, after the metadata (and status): decoding a 4 MB spec into
        # Python objects only to encode it again cost ~40 ms of every write of a 20k-host Proxy.
        envelope = msgspec.json.encode(to_flat(resource.model_copy(update={"spec": _NO_SPEC}), compress=False))
        return envelope[:-1] + b"," + spec.json[1:] + b"\n"
    document = to_flat(resource, compress=False)
    as_json = msgspec.json.encode(document)
    if len(as_json) > JSON_ABOVE_BYTES:
        return as_json + b"\n"
    return dump_yaml(document).encode("utf-8")


def load_document(data: bytes, limits: InputLimits) -> Any:
    """The document in a file: JSON when it starts like JSON, else YAML (its aliases bounded by `limits`).
    Raises Unreadable."""
    if _JSON_START.match(data):
        try:
            return msgspec.json.decode(data)
        except UnicodeDecodeError as exc:
            raise Unreadable(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
        except RecursionError as exc:
            raise Unreadable(f"not valid JSON: {_TOO_DEEP}") from exc
        except msgspec.DecodeError as exc:
            # A small file may be a YAML flow mapping (`{name: x}`) written by hand: give YAML its chance. A large
            # one is ours, caught mid-write by someone else: YAML would take seconds only to fail as well.
            if len(data) > JSON_ABOVE_BYTES:
                raise Unreadable(f"not valid JSON: {exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    try:
        return load_yaml(text, limits)
    except yaml.YAMLError as exc:
        raise Unreadable(_yaml_problem(exc)) from exc
    except InputTooLarge as exc:
        raise BeyondLimits(str(exc)) from exc


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    line = f" (line {mark.line + 1})" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"not valid YAML{line}: {problem}"


def decode(kind: type[R], data: bytes, key: ObjectKey, limits: InputLimits) -> R:
    """The resource a file at `key`'s path holds; raises Unreadable if there is none, or another one."""
    return decode_document(kind, load_document(data, limits), key)


def decode_document(kind: type[R], document: Any, key: ObjectKey) -> R:
    """The resource a loaded document at `key`'s path is; raises Unreadable if it is none, or another one."""
    if document is None:
        raise Unreadable("empty file")
    if not isinstance(document, dict):
        raise Unreadable(f"expected a mapping in Gloo's flat form, got {type(document).__name__}")
    if "apiVersion" in document or "kind" in document:
        # A Kubernetes CR read as flat form would pass for a resource with a few unknown fields: refuse it.
        raise Unreadable(
            "a Kubernetes custom resource (apiVersion/kind/spec); Gloo's directory layout holds the flat form:"
            " metadata and the spec's fields at the top level"
        )
    try:
        resource = from_flat(kind, document)
    except DecodeError as exc:
        raise Unreadable(str(exc)) from exc
    except RecursionError as exc:  # a spec kept as JSON bytes is serialized recursively
        raise Unreadable(_TOO_DEEP) from exc
    found = resource.key
    if found != key:
        named = f"{found.namespace}/{found.name}" if found.namespace else f"{found.name} with no namespace"
        raise Unreadable(
            f"its metadata names {named} but its path says {key}; Gloo names it after its metadata, reads and"
            " writes go by path: make them agree"
        )
    return resource


def labels_in(document: Any) -> dict[str, str] | None:
    """The labels a loaded document's metadata carries ({} when none, or when they are no string map); None when
    it has no `metadata` object at all: then nothing in it names an owner."""
    metadata = document.get("metadata") if isinstance(document, dict) else None
    if not isinstance(metadata, dict):
        return None
    labels = metadata.get("labels")
    if not isinstance(labels, dict):
        return {}
    return {k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)}


def stored_version(data: bytes, limits: InputLimits) -> str:
    """The file's metadata.resourceVersion, "" when absent, as solo-kit compares it (its Go zero value).
    Raises Unreadable when the file has no metadata to compare."""
    document = load_document(data, limits)
    metadata = document.get("metadata") if isinstance(document, dict) else None
    if not isinstance(metadata, dict):
        raise Unreadable("no metadata")
    version = metadata.get("resourceVersion")
    return "" if version is None else str(version)
