"""The configuration file's JSON Schema (`proxycontroller config schema`), with each strategy's options.

pydantic describes the configuration model; a strategy's `options` are a free mapping there, since which model
validates them depends on `kind`. This adds each registered strategy's options model under `$defs` as
`options.<kind>` and, on the strategy settings, one `if kind is K then options is options.<K>` per kind (the
default kind, `host-header`, also when `kind` is left out). `kind: plugin` options stay free: the plugin's
model is known only once it is imported. The first release's short form (`proxy`, `listener`, `strategy` at the
top level) is described too, so every file `load_config` takes is valid against the schema.

The schema describes shapes and the simple rules (types, ranges, enums, required keys); the checks that need
code (names Kubernetes accepts, distinct listener ports, templates, label keys) are `load_config`'s, whose
error names the key.
"""

from __future__ import annotations

import copy
from typing import Any

from proxycontroller.config import ControllerConfig, StrategySettings
from proxycontroller.translate.registry import PLUGIN, StrategyRegistry

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_DEFAULT_KIND = StrategySettings.model_fields["kind"].default


def config_schema(registry: StrategyRegistry) -> dict[str, Any]:
    """The JSON Schema of the configuration file, the options of the registry's strategies included."""
    schema = ControllerConfig.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    definitions: dict[str, Any] = schema.setdefault("$defs", {})
    conditions = []
    for kind in registry.names:
        found = registry.get(kind)
        options = found.options.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        for name, definition in options.pop("$defs", {}).items():
            definitions.setdefault(name, definition)
        key = f"options.{kind}"
        definitions[key] = options
        then = {"properties": {"options": {"$ref": f"#/$defs/{key}"}}}
        conditions.append({"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]}, "then": then})
        if kind == _DEFAULT_KIND:
            conditions.append({"if": {"not": {"required": ["kind"]}}, "then": then})
    strategy = definitions["StrategySettings"]
    strategy["allOf"] = conditions
    strategy["properties"]["kind"]["examples"] = [*registry.names, PLUGIN]
    _add_short_form(schema, definitions)
    return {"$schema": SCHEMA_DIALECT, "title": "proxycontroller configuration", **schema}


def _add_short_form(schema: dict[str, Any], definitions: dict[str, Any]) -> None:
    """`proxy`, `listener` and `strategy` at the top level, instead of `proxies` (not both)."""
    short_strategy = copy.deepcopy(definitions["StrategySettings"])
    # The short form's strategy may carry its domain templates beside its kind (they move into its options).
    templates = {"type": "array", "items": {"type": "string"}}
    short_strategy["properties"].update({"domainTemplates": templates, "domain_templates": templates})
    definitions["ShortFormStrategy"] = short_strategy
    schema["properties"].update(
        {
            "proxy": {"$ref": "#/$defs/ProxySettings", "description": "short form: the one Proxy"},
            "listener": {"$ref": "#/$defs/ListenerSettings", "description": "short form: its one listener"},
            "strategy": {"$ref": "#/$defs/ShortFormStrategy", "description": "short form: its one strategy"},
        }
    )
    short = [{"required": [key]} for key in ("proxy", "listener", "strategy")]
    schema["not"] = {"allOf": [{"required": ["proxies"]}, {"anyOf": short}]}
