"""Canonical JSON: the one byte form in which desired and stored objects are compared.

Sorted keys and no spaces, written by msgspec: equal content gives equal bytes whichever way it was made
(pydantic models, a dict the API server sent, a file Gloo rewrote), so a diff is one `==` on bytes.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any

import msgspec
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from proxycontroller.model.base import GlooModel

_ENCODER = msgspec.json.Encoder(order="sorted")


class CanonicalError(ValueError):
    """Bytes that are not the JSON object they claim to be."""


def canonical_json(value: Any) -> bytes:
    """`value` (plain JSON data, or a Gloo model) as canonical JSON."""
    if isinstance(value, GlooModel):
        value = msgspec.json.decode(value.to_json_bytes())
    return _ENCODER.encode(value)


def compress(raw: bytes) -> str:
    """Gloo's `compressedSpec`: base64 of zlib of the spec's JSON."""
    return base64.b64encode(zlib.compress(raw)).decode("ascii")


def decompress(text: str) -> bytes:
    try:
        return zlib.decompress(base64.b64decode(text, validate=True))
    except (binascii.Error, zlib.error, ValueError) as exc:
        raise CanonicalError(f"not base64 of zlib-compressed data: {exc}") from exc


class CanonicalSpec:
    """A spec kept as canonical JSON bytes instead of a model tree: what the engine stores for its outputs.

    A 10k-host Proxy is 2 MB of JSON; decoding it into models costs ~100 ms and leaves ~200k objects for the
    cyclic GC to walk on every collection, and the engine only ever compares and writes it. A spec read in
    Gloo's compressed form keeps that text and is decompressed only if someone asks for the bytes: a status
    write by Gloo leaves `compressedSpec` as it was, so comparing the text with what was written is enough.
    Immutable; the lazily decompressed bytes are a cache of a pure function of the text.
    """

    __slots__ = ("_compressed", "_json")

    def __init__(self, json: bytes | None = None, compressed: str | None = None) -> None:
        if json is None and compressed is None:
            raise ValueError("a CanonicalSpec needs its JSON or its compressed form")
        self._json = json
        self._compressed = compressed

    @classmethod
    def of(cls, spec: dict[str, Any]) -> CanonicalSpec:
        return cls(json=canonical_json(spec))

    @property
    def json(self) -> bytes:
        if self._json is None:
            assert self._compressed is not None
            try:
                decoded = msgspec.json.decode(decompress(self._compressed))
            except msgspec.DecodeError as exc:
                raise CanonicalError(f"compressedSpec does not hold JSON: {exc}") from exc
            if not isinstance(decoded, dict):
                raise CanonicalError(f"compressedSpec holds {type(decoded).__name__}, not an object")
            self._json = canonical_json(decoded)
        return self._json

    @property
    def compressed(self) -> str:
        """The compressed form, computed once."""
        if self._compressed is None:
            assert self._json is not None
            self._compressed = compress(self._json)
        return self._compressed

    @property
    def stored_compressed(self) -> str | None:
        """The compressed text as read or written, without computing one."""
        return self._compressed

    def same_as(self, other: CanonicalSpec) -> bool:
        """Equal content; compares compressed texts first when both have one (no decompression)."""
        if self is other:
            return True
        if self._compressed is not None and self._compressed == other._compressed:
            return True
        return self.json == other.json

    def to_json_bytes(self) -> bytes:
        return self.json

    def to_json_dict(self) -> dict[str, Any]:
        decoded: dict[str, Any] = msgspec.json.decode(self.json)
        return decoded

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CanonicalSpec) and self.same_as(other)

    def __hash__(self) -> int:
        return hash(self.json)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        """As a model field: validated from a spec dict (plain or compressed), dumped as the spec dict."""
        return core_schema.no_info_plain_validator_function(
            _validate_spec,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda spec: spec.to_json_dict()),
        )

    def __repr__(self) -> str:
        size = f"{len(self._json)} bytes" if self._json is not None else "compressed"
        return f"CanonicalSpec({size})"


def _validate_spec(value: Any) -> CanonicalSpec:
    if isinstance(value, CanonicalSpec):
        return value
    if isinstance(value, bytes):
        return CanonicalSpec(json=value)
    if not isinstance(value, dict):
        raise ValueError(f"a spec must be an object, got {type(value).__name__}")
    compressed = value.get("compressedSpec", value.get("compressed_spec"))
    if compressed is not None:
        if not isinstance(compressed, str):
            raise ValueError(f"compressedSpec must be a base64 string, got {type(compressed).__name__}")
        return CanonicalSpec(compressed=compressed)
    return CanonicalSpec.of(value)
