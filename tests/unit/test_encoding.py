"""Round trips through Gloo's three encodings never lose a field."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxycontroller.model.canonical import CanonicalError, CanonicalSpec, canonical_json
from proxycontroller.model.encoding import (
    COMPRESS_ANNOTATION,
    DecodeError,
    compress_spec,
    decompress_spec,
    from_cr,
    from_flat,
    to_cr,
    to_flat,
)
from proxycontroller.model.resources import Proxy, StoredProxy, Upstream
from proxycontroller.model.status import State


@pytest.fixture
def petstore_flat(gloo_petstore_upstream_file: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(gloo_petstore_upstream_file.read_text())
    return document


def test_gloo_petstore_sample_survives_the_flat_round_trip(petstore_flat: dict[str, Any]) -> None:
    upstream = from_flat(Upstream, petstore_flat)
    assert upstream.spec.static is not None
    assert upstream.spec.static.service_spec is not None  # the nested serviceSpec is kept, not dropped
    assert to_flat(upstream) == petstore_flat


def test_gloo_petstore_sample_survives_the_cr_round_trip(petstore_flat: dict[str, Any]) -> None:
    upstream = from_flat(Upstream, petstore_flat)
    cr = to_cr(upstream)
    assert cr["apiVersion"] == "gloo.solo.io/v1"
    assert cr["kind"] == "Upstream"
    assert cr["spec"]["static"] == petstore_flat["static"]
    assert from_cr(Upstream, cr) == upstream
    assert to_flat(from_cr(Upstream, cr)) == petstore_flat


def test_gloo_petstore_sample_survives_the_compressed_round_trip(petstore_flat: dict[str, Any]) -> None:
    upstream = from_flat(Upstream, petstore_flat)
    for encode, decode in ((to_cr, from_cr), (to_flat, from_flat)):
        document = encode(upstream, compress=True)
        assert document["metadata"]["annotations"][COMPRESS_ANNOTATION] == "true"
        spec = document.get("spec", document)
        assert "static" not in spec
        decoded = decode(Upstream, document)
        assert decoded.spec == upstream.spec
        assert to_flat(decoded.model_copy(update={"metadata": upstream.metadata})) == petstore_flat


def test_compressed_spec_is_what_gloo_reads() -> None:
    spec = {"listeners": [{"name": "l", "bindAddress": "::", "bindPort": 8080}]}
    raw = compress_spec(spec)["compressedSpec"]
    # Gloo: base64 (standard alphabet) of zlib of the JSON spec.
    assert json.loads(zlib.decompress(base64.b64decode(raw))) == spec
    assert decompress_spec({"compressed_spec": raw}) == spec


def test_unknown_fields_everywhere_are_kept() -> None:
    cr = {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Proxy",
        "metadata": {
            "name": "p",
            "namespace": "gloo-system",
            "managedFields": [{"manager": "x"}],
            "uid": "u",
        },
        "spec": {
            "futureTopLevel": {"a": 1},
            "listeners": [
                {
                    "name": "l",
                    "bindAddress": "::",
                    "bindPort": 8080,
                    "futureListenerField": True,
                    "httpListener": {
                        "virtualHosts": [
                            {
                                "name": "v",
                                "domains": ["d"],
                                "routes": [{"matchers": [{"prefix": "/", "futureMatch": 1}]}],
                            }
                        ]
                    },
                }
            ],
        },
        "status": {"statuses": {"gloo-system": {"state": 1, "reportedBy": "gloo", "extra": "kept"}}},
    }
    proxy = from_cr(Proxy, cr)
    assert to_cr(proxy) == cr
    assert proxy.state_from("gloo-system") is State.ACCEPTED


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "metadata": {}}, "no metadata.name"),
        (
            {"apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "metadata": {"name": "a"}, "spec": []},
            "spec is not",
        ),
        (
            {
                "apiVersion": "gloo.solo.io/v1",
                "kind": "Upstream",
                "metadata": {"name": "a", "namespace": "n"},
                "spec": {"static": {"hosts": [{"port": 1}]}},
            },
            "Upstream n/a: spec.static.hosts.0.addr: Field required",
        ),
        (
            {
                "apiVersion": "gloo.solo.io/v1",
                "kind": "Upstream",
                "metadata": {"name": "a"},
                "spec": {"compressedSpec": "not base64!"},
            },
            "compressedSpec",
        ),
        (
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}},
            "expected gloo.solo.io/v1 Upstream",
        ),
    ],
)
def test_bad_documents_are_refused_with_a_message_naming_the_problem(document: dict[str, Any], message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        from_cr(Upstream, document)


@pytest.mark.parametrize(("raw", "state"), [(1, State.ACCEPTED), ("Rejected", State.REJECTED), (9, None), (None, None)])
def test_state_reads_numbers_and_names(raw: int | str | None, state: State | None) -> None:
    assert State.parse(raw) is state


def test_a_copy_with_another_name_has_another_key() -> None:
    upstream = Upstream.model_validate({"metadata": {"name": "a", "namespace": "n"}, "spec": {}})
    assert str(upstream.key) == "n/a"
    renamed = upstream.model_copy(update={"metadata": upstream.metadata.model_copy(update={"name": "b"})})
    assert str(renamed.key) == "n/b"
    assert str(upstream.key) == "n/a"


SPEC: dict[str, Any] = {
    "listeners": [{"name": "l", "bindPort": 8080, "bindAddress": "::", "futureField": {"b": 1, "a": 2}}]
}


def test_canonical_json_is_the_same_bytes_however_the_spec_was_made() -> None:
    expected = b'{"listeners":[{"bindAddress":"::","bindPort":8080,"futureField":{"a":2,"b":1},"name":"l"}]}'
    assert canonical_json(SPEC) == expected
    assert canonical_json(Proxy.model_validate({"metadata": {"name": "p"}, "spec": SPEC}).spec) == expected
    assert CanonicalSpec(compressed=compress_spec(SPEC)["compressedSpec"]).json == expected


def test_a_stored_proxy_keeps_glooss_compressed_text_as_read_and_writes_it_back_unchanged() -> None:
    compressed = compress_spec(SPEC)
    cr = {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Proxy",
        "metadata": {"name": "p", "namespace": "gloo-system", "annotations": {COMPRESS_ANNOTATION: "true"}},
        "spec": compressed,
    }
    stored = from_cr(StoredProxy, cr)
    assert stored.spec.stored_compressed == compressed["compressedSpec"]
    assert to_cr(stored, compress=True) == cr
    assert stored.spec == CanonicalSpec.of(SPEC)
    assert to_cr(stored)["spec"] == SPEC
    assert [listener.bind_port for listener in stored.decoded().spec.listeners or ()] == [8080]


def test_a_spec_that_is_not_what_it_claims_is_refused() -> None:
    with pytest.raises(CanonicalError, match="not base64 of zlib-compressed data"):
        _ = CanonicalSpec(compressed="not base64!").json
    with pytest.raises(CanonicalError, match="holds list, not an object"):
        _ = CanonicalSpec(compressed=compress_spec(b"[1]")["compressedSpec"]).json


def test_models_are_immutable_with_tuples_for_repeated_fields(petstore_flat: dict[str, Any]) -> None:
    upstream = from_flat(Upstream, petstore_flat)
    assert upstream.spec.static is not None
    assert isinstance(upstream.spec.static.hosts, tuple)
    with pytest.raises(ValueError, match="frozen"):
        upstream.metadata.name = "other"  # type: ignore[misc]
