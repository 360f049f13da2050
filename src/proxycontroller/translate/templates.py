"""Templates: `{name}.example.com`, `{label[app]}.{namespace}.example.com`, `/{name}`; checked when the
configuration loads, rendered per upstream.

Fields: `{name}`, `{namespace}` (the Upstream's), `{label[KEY]}` and `{annotation[KEY]}` (the value of one of
its labels or annotations; KEY as Kubernetes writes keys, e.g. `app` or `example.com/team`), and for a kube
Upstream `{service}`, `{serviceNamespace}` and `{port}` (its Service's name, namespace and port); for a Service
port (`sources: [services]`) those too, and `{portName}` (the port's name; an unnamed port has none).

Python's `str.format` would evaluate `{name.__class__}` (attribute access) and `{name[0]}` (indexing): a
configuration is not code, so only these exact forms are accepted, `[KEY]` only after `label` and `annotation`,
and the template is rendered by this module, never by `str.format`. A template that names something an
upstream lacks (a label it does not carry, a service field of an upstream that is not kube) cannot make its
domain: that upstream is left out with a warning naming it (`TemplateError`), the configuration stays valid.
A template must use at least one field: a constant would make the same domain for every upstream, and only the
first would be routed.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import NamedTuple

from proxycontroller.config import label_key_problem, shown
from proxycontroller.model.resources import ServiceTarget, Upstream

# The fields a template may name, besides label[KEY] and annotation[KEY].
TEMPLATE_FIELDS = ("name", "namespace", "service", "serviceNamespace", "port", "portName")
KEYED_FIELDS = ("label", "annotation")
# The kube upstream's attribute behind each service field, and its key as Gloo writes it.
_SERVICE_FIELDS = {
    "service": ("service_name", "serviceName"),
    "serviceNamespace": ("service_namespace", "serviceNamespace"),
    "port": ("service_port", "servicePort"),
}
# A Host header holds no whitespace; Envoy refuses a domain with NUL, CR or LF (the whole route configuration).
DOMAIN_REFUSED = re.compile(r"[\s\x00-\x1f\x7f]")
_KEYED = re.compile(r"(label|annotation)\[([^\]]*)\]")
_KNOWN = ", ".join([*(f"{{{field}}}" for field in TEMPLATE_FIELDS), "{label[KEY]}", "{annotation[KEY]}"])


class TemplateError(ValueError):
    """A template that cannot be used; the message says which part and why."""


class Field(NamedTuple):
    """One field of a template: `name`, ..., or `label`/`annotation` with its key."""

    kind: str
    key: str | None = None

    def __str__(self) -> str:
        return f"{{{self.kind}}}" if self.key is None else f"{{{self.kind}[{self.key}]}}"


_NAME = Field("name")
_NAMESPACE = Field("namespace")


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and fields, alternating."""

    source: str
    parts: tuple[tuple[str, Field | None], ...]

    @classmethod
    def parse(cls, source: str) -> Template:
        if not source:
            raise TemplateError("is empty: a virtual host needs a domain")
        quoted = shown(source)
        parts: list[tuple[str, Field | None]] = []
        try:
            parsed = list(string.Formatter().parse(source))
        except ValueError as exc:
            raise TemplateError(f"{quoted} is not a template: {exc}") from None
        for literal, name, spec, conversion in parsed:
            if DOMAIN_REFUSED.search(literal):
                raise TemplateError(f"{quoted} holds whitespace or a control character, which no domain does")
            if name is None:
                parts.append((literal, None))
                continue
            field = _field(quoted, name)
            if spec or conversion:
                raise TemplateError(f"{quoted}: {field} may not carry a conversion or format spec")
            parts.append((literal, field))
        if all(field is None for _, field in parts):
            raise TemplateError(
                f"{quoted} uses no field (one of {_KNOWN}): every upstream would make the same domain, and only"
                " the first would be routed"
            )
        return cls(source, tuple(parts))

    @property
    def fields(self) -> tuple[Field, ...]:
        return tuple(field for _, field in self.parts if field is not None)

    @property
    def literal_start(self) -> str:
        """The text before its first field."""
        return self.parts[0][0] if self.parts else ""

    def render(self, upstream: Upstream) -> str:
        """What the template makes for this upstream; TemplateError if that is empty, or if the upstream lacks a
        field the template names (the upstream is then left out)."""
        metadata = upstream.metadata
        made = []
        for literal, field in self.parts:
            made.append(literal)
            if field is _NAME:  # the parser hands out these two, so identity tells them
                made.append(metadata.name)
            elif field is _NAMESPACE:
                made.append(metadata.namespace)
            elif field is not None:
                made.append(self._value(field, upstream))
        rendered = "".join(made)
        if not rendered:
            raise TemplateError(f"{shown(self.source)} makes an empty domain")
        return rendered

    def _value(self, field: Field, upstream: Upstream) -> str:
        """A label's, an annotation's or the Service's value, checked: a domain holds no whitespace."""
        if field.key is not None:
            found = upstream.metadata.labels if field.kind == "label" else upstream.metadata.annotations
            value = (found or {}).get(field.key)
            if value is None:
                raise TemplateError(f"{shown(self.source)}: the upstream has no {field.kind} {shown(field.key)}")
        elif field.kind == "portName":
            port_name = upstream.service.port_name if isinstance(upstream, ServiceTarget) else None
            if port_name is None:
                what = "an unnamed port" if isinstance(upstream, ServiceTarget) else "not a Service port"
                raise TemplateError(f"{shown(self.source)}: {field} has no value: the upstream is {what}")
            value = port_name
        else:
            kube = upstream.spec.kube
            attribute, written = _SERVICE_FIELDS[field.kind]
            service = None if kube is None else getattr(kube, attribute)
            if service is None:
                what = "is not a kube upstream" if kube is None else f"has no kube.{written}"
                raise TemplateError(f"{shown(self.source)}: {field} has no value: the upstream {what}")
            value = str(service)
        if DOMAIN_REFUSED.search(value):
            raise TemplateError(f"{shown(self.source)}: the value of {field}, {shown(value)}, holds whitespace")
        return value


def _field(quoted: str, name: str) -> Field:
    if not name or name.isdigit():
        raise TemplateError(f"{quoted}: a positional field {{{name}}}; name one of {_KNOWN}")
    if name in TEMPLATE_FIELDS:
        return _NAME if name == "name" else _NAMESPACE if name == "namespace" else Field(name)
    if name in KEYED_FIELDS:
        raise TemplateError(f"{quoted}: {{{name}}} needs a key: {{{name}[KEY]}}, e.g. {{{name}[app]}}")
    keyed = _KEYED.fullmatch(name)
    if keyed is not None:
        kind, key = keyed.groups()
        problem = label_key_problem(key)
        if problem is not None:
            raise TemplateError(f"{quoted}: {{{kind}[...]}}: {problem.replace('label key', f'{kind} key', 1)}")
        return Field(kind, key)
    head = re.split(r"[.\[]", name, maxsplit=1)[0]
    if head in TEMPLATE_FIELDS or head in KEYED_FIELDS:
        raise TemplateError(f"{quoted}: no attribute access or indexing; only {_KNOWN}")
    raise TemplateError(f"{quoted}: unknown field {shown('{' + name + '}')}; known: {_KNOWN}")
