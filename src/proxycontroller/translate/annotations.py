"""What a service owner writes on an Upstream, read and checked: extra domains and a path prefix.

A value that cannot be used leaves that upstream out (the strategy raises `Skip` with `AnnotationError`'s
message, which names the annotation and says what is allowed); it never fails the pass or the configuration.
The rules are stricter than Envoy's and Gloo's (which refuse only NUL, CR, LF and empty domains, and paths
outside RFC 3986's pchars), so a value that passes here passes validation too:

- a domain is a host name (letters, digits and '-' in dot-separated labels, at most 253 characters), optionally
  with a leading `*.` wildcard and a `:port`; never a bare `*`, which would claim every request;
- a prefix is `/segment[/segment...]`, each segment made of RFC 3986 pchars (no %-escapes), not `.` or `..`:
  so no `//`, no trailing `/`, and not `/` alone.
"""

from __future__ import annotations

import re

from proxycontroller.config import shown
from proxycontroller.model.meta import ObjectMeta

DOMAINS_ANNOTATION = "proxycontroller.io/domains"
PREFIX_ANNOTATION = "proxycontroller.io/prefix"

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(\*\.)?{_LABEL}(\.{_LABEL})*(:[0-9]{{1,5}})?")
_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@-]+")
_DOMAIN_RULE = (
    "a host name (letters, digits and '-' in dot-separated labels), optionally with a leading '*.' and a ':port'"
)
PREFIX_RULE = "'/' then segments of letters, digits and ._~!$&'()*+,;=:@- separated by single '/', no '.' or '..'"


class AnnotationError(ValueError):
    """An annotation whose value cannot be used; the message names it and says what is allowed."""


def annotation(metadata: ObjectMeta, key: str) -> str | None:
    annotations = metadata.annotations
    return annotations.get(key) if annotations else None


def domain_problem(domain: str) -> str | None:
    host, _, port = domain.partition(":")
    if len(host) > 253 or not _DOMAIN.fullmatch(domain) or (port and not 0 < int(port) < 65536):
        return f"{shown(domain)} is not {_DOMAIN_RULE}"
    return None


def extra_domains(metadata: ObjectMeta) -> tuple[str, ...]:
    """The domains of the domains annotation, in order; AnnotationError for a value that is not a comma-separated
    list of domains."""
    value = annotation(metadata, DOMAINS_ANNOTATION)
    if value is None:
        return ()
    domains = tuple(part.strip() for part in value.split(","))
    for domain in domains:
        problem = "an empty entry" if not domain else domain_problem(domain)
        if problem is not None:
            raise AnnotationError(
                f"annotation {DOMAINS_ANNOTATION}={shown(value)}: {problem}; expected domains separated by commas,"
                f" each {_DOMAIN_RULE}"
            )
    return domains


def prefix_problem(prefix: str) -> str | None:
    """What is wrong with a path prefix (from the annotation or a template), or None."""
    if not prefix.startswith("/") or prefix == "/":
        return "does not start with '/' or names no segment"
    for segment in prefix[1:].split("/"):
        if not segment:
            return "holds an empty segment ('//' or a trailing '/')"
        if segment in (".", ".."):
            return f"holds the segment {shown(segment)}"
        if not _SEGMENT.fullmatch(segment):
            return "holds a character outside the rule"
    return None


def annotated_prefix(metadata: ObjectMeta) -> str | None:
    """The prefix annotation's value, checked; None if there is none. AnnotationError if it cannot be used."""
    value = annotation(metadata, PREFIX_ANNOTATION)
    if value is None:
        return None
    problem = prefix_problem(value)
    if problem is not None:
        raise AnnotationError(f"annotation {PREFIX_ANNOTATION}={shown(value)}: {problem}; expected {PREFIX_RULE}")
    return value
