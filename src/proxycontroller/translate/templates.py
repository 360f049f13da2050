"""Domain templates: `{name}.example.com`, checked when the configuration loads, rendered per upstream.

Python's `str.format` would evaluate `{name.__class__}` (attribute access) and `{name[0]}` (indexing): a
configuration is not code, so only plain `{field}` references to the documented fields are accepted.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass

TEMPLATE_FIELDS = ("name", "namespace")


class TemplateError(ValueError):
    """A template that cannot be used; the message says which part and why."""


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and field names, alternating."""

    source: str
    parts: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, source: str, fields: tuple[str, ...] = TEMPLATE_FIELDS) -> Template:
        if not source:
            raise TemplateError("is empty")
        parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(source))
        except ValueError as exc:
            raise TemplateError(f"{source!r} is not a template: {exc}") from exc
        for literal, field, spec, conversion in parsed:
            if field is None:
                parts.append((literal, None))
                continue
            if spec or conversion:
                raise TemplateError(f"{source!r}: {{{field}}} may not carry a conversion or format spec")
            if field not in fields:
                raise TemplateError(f"{source!r}: unknown field {{{field}}}; known: {', '.join(fields)}")
            parts.append((literal, field))
        return cls(source, tuple(parts))

    def render(self, values: Mapping[str, str]) -> str:
        return "".join(literal + (values[field] if field is not None else "") for literal, field in self.parts)
