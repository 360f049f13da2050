"""Bounds on what the controller reads: how many bytes, and how far YAML aliases may expand a document.

Input is not trusted. A few hundred bytes of nested YAML anchors (`a: &a [x, x]`, `b: &b [*a, *a]`, ...) load
in microseconds as shared Python objects, but everything after loading (decoding into models, validating,
serializing) walks them as a tree, whose size doubles per level: the "billion laughs". Go's YAML library,
which Gloo and Kubernetes read files with, refuses excessive aliasing; so does this. And a file (or stdin) is
read only up to a limit, so `/dev/zero` or a 200 MB file cannot grow memory without bound.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from pydantic.alias_generators import to_camel

MiB = 1024 * 1024


class InputLimits(BaseModel):
    """The `limits` section of the configuration. Defaults are generous for real Gloo trees: a Proxy file with
    50k virtual hosts is ~12 MB, an Upstream file a few KB, `kubectl get upstreams -A -o yaml` of 50k upstreams
    ~40 MB."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    # Any one file of Gloo's directory tree (Upstream or Proxy) and the configuration file.
    max_file_bytes: StrictInt = Field(default=64 * MiB, ge=1024)
    # Each input of `render` (a file, or stdin): a whole cluster's upstreams in one stream.
    max_input_bytes: StrictInt = Field(default=512 * MiB, ge=1024)
    # How many nodes YAML aliases may add to a document beyond its own (each use of an alias counts the nodes it
    # stands for). Hand-written files that share a block through an anchor stay far below it.
    max_alias_nodes: StrictInt = Field(default=100_000, ge=0)


DEFAULT_LIMITS = InputLimits()  # frozen: shared safely


class InputTooLarge(ValueError):
    """Input over a limit; the message says which limit (without naming the file: the caller does)."""


def read_bounded(stream: BinaryIO, limit: int, setting: str) -> bytes:
    """All of `stream`, or InputTooLarge once more than `limit` bytes come (it never reads past limit + 1:
    `/dev/zero` and endless pipes end here)."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise InputTooLarge(f"larger than the limit of {limit} bytes ({setting})")
    return data


def may_hold_aliases(text: str | bytes) -> bool:
    """Whether a YAML text can define an anchor at all: without `&` there is nothing to expand, and the walk
    below (in Python, over every node) is skipped for the usual file."""
    return ("&" in text) if isinstance(text, str) else (b"&" in text)


def check_alias_expansion(document: Any, limit: int) -> None:
    """InputTooLarge if `document`, read as a tree, has more than `limit` nodes beyond its distinct ones, or if
    it contains itself (`&a [*a]`: no tree at all).

    Counts each container once per place it appears (what later processing will visit), memoized by identity so
    the count itself stays linear in the distinct nodes; iterative, so deep nesting cannot exhaust the stack.
    """
    sizes: dict[int, int] = {}  # id(container) -> nodes of its tree, itself included, once finished
    open_containers: set[int] = set()
    distinct = 0
    stack: list[tuple[Any, bool]] = [(document, False)]
    while stack:
        node, finishing = stack.pop()
        if not isinstance(node, dict | list):
            continue
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        if finishing:
            open_containers.discard(id(node))
            total = 1 + sum(sizes[id(child)] if isinstance(child, dict | list) else 1 for child in children)
            sizes[id(node)] = total
            if total - distinct > limit:
                raise InputTooLarge(
                    f"YAML aliases expand it beyond the limit of {limit} added nodes (limits.maxAliasNodes)"
                )
            continue
        if id(node) in open_containers:
            raise InputTooLarge("a YAML alias makes it contain itself")
        if id(node) in sizes:
            continue
        containers = [child for child in children if isinstance(child, dict | list)]
        distinct += 1 + len(children) - len(containers)
        open_containers.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in containers)
