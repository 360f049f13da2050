"""Domain templates: `{name}.example.com`, checked when the configuration loads, rendered per upstream.

Python's `str.format` would evaluate `{name.__class__}` (attribute access) and `{name[0]}` (indexing): a
configuration is not code, so only plain `{field}` references to the documented fields are accepted. A
template is also checked for what it makes: a domain (no whitespace or control character, never empty) that
differs from one upstream to the next, since a virtual host whose domain another one already claims is left out.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

from proxycontroller.config import shown

TEMPLATE_FIELDS = ("name", "namespace")
# The field that tells upstreams apart: without it, every upstream (of a namespace) makes the same domain.
DISTINCT_FIELD = "name"
# A Host header holds no whitespace; Envoy refuses a domain with NUL, CR or LF (the whole route configuration).
DOMAIN_REFUSED = re.compile(r"[\s\x00-\x1f\x7f]")
_KNOWN = ", ".join(f"{{{field}}}" for field in TEMPLATE_FIELDS)


class TemplateError(ValueError):
    """A template that cannot be used; the message says which part and why."""


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and field names, alternating."""

    source: str
    parts: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, source: str) -> Template:
        if not source:
            raise TemplateError("is empty: a virtual host needs a domain")
        quoted = shown(source)
        parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(source))
        except ValueError as exc:
            raise TemplateError(f"{quoted} is not a template: {exc}") from None
        for literal, field, spec, conversion in parsed:
            if DOMAIN_REFUSED.search(literal):
                raise TemplateError(f"{quoted} holds whitespace or a control character, which no domain does")
            if field is None:
                parts.append((literal, None))
                continue
            if not field or field.isdigit():
                raise TemplateError(f"{quoted}: a positional field {{{field}}}; name one of {_KNOWN}")
            if field not in TEMPLATE_FIELDS:
                if re.split(r"[.\[]", field, maxsplit=1)[0] in TEMPLATE_FIELDS:
                    raise TemplateError(f"{quoted}: no attribute access or indexing; only {_KNOWN}")
                raise TemplateError(f"{quoted}: unknown field {shown('{' + field + '}')}; known: {_KNOWN}")
            if spec or conversion:
                raise TemplateError(f"{quoted}: {{{field}}} may not carry a conversion or format spec")
            parts.append((literal, field))
        if all(field != DISTINCT_FIELD for _, field in parts):
            raise TemplateError(
                f"{quoted} does not use {{{DISTINCT_FIELD}}}: the upstreams of a namespace would all make one"
                " domain, and only the first would be routed"
            )
        return cls(source, tuple(parts))

    def render(self, values: Mapping[str, str]) -> str:
        """The domain for these values; TemplateError if it is empty (the upstream is then left out)."""
        rendered = "".join(literal + (values[field] if field is not None else "") for literal, field in self.parts)
        if not rendered:
            raise TemplateError(f"{shown(self.source)} makes an empty domain")
        return rendered
