"""`proxycontroller config schema`: the configuration's JSON Schema, each built-in strategy's options in it;
every configuration among the examples is valid against it and loads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from proxycontroller.config import load_config
from proxycontroller.translate.builtin import BUILTIN_STRATEGIES
from tests.conftest import REPO
from tests.unit.test_render_cli import run

EXAMPLES = REPO / "examples"


def example_configs() -> list[Path]:
    """Every YAML file under examples/ but the inputs (Gloo's directory trees, Kubernetes objects: Upstreams,
    Services, Lists of them; a configuration has no `kind`)."""
    found = []
    for path in sorted(EXAMPLES.rglob("*.y*ml")):
        if "upstreams" in path.relative_to(EXAMPLES).parts[:-1]:
            continue
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
        if any("kind" in d for d in documents):
            continue
        found.append(path)
    return found


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    code, out, err = run("config", "schema")
    assert code == 0, err
    printed: dict[str, Any] = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(printed)
    return printed


def test_the_examples_are_found() -> None:
    names = {str(path.relative_to(EXAMPLES)) for path in example_configs()}
    assert {"config.yaml", "https/config.yaml", "path-prefix/config.yaml", "plugins/canary.yaml"} <= names


@pytest.mark.parametrize("path", example_configs(), ids=lambda path: str(path.relative_to(EXAMPLES)))
def test_every_example_configuration_is_valid_against_the_schema_and_loads(path: Path, schema: dict[str, Any]) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()) or {}, schema, cls=jsonschema.Draft202012Validator)
    load_config(path)


def test_each_builtin_strategys_options_are_in_the_schema_by_kind(schema: dict[str, Any]) -> None:
    for strategy in BUILTIN_STRATEGIES:
        options = schema["$defs"][f"options.{strategy.name}"]
        assert options["additionalProperties"] is False
    assert "prefixTemplate" in schema["$defs"]["options.path-prefix"]["properties"]
    assert "domainTemplates" in schema["$defs"]["options.host-header"]["properties"]


@pytest.mark.parametrize(
    "config",
    [
        {"proxies": [{"listeners": [{"strategies": [{"kind": "path-prefix", "options": {"prefixTemplat": "/x"}}]}]}]},
        # kind left out: host-header, whose options are checked too
        {"proxies": [{"listeners": [{"strategies": [{"options": {"domainTemplate": ["{name}"]}}]}]}]},
        {"proxies": [{"listeners": [{"strategies": [{"kind": "https-redirect", "options": {"responseCode": 200}}]}]}]},
        {"proxies": [{"shards": 0}]},
        {"proxies": [{"exposure": "sometimes"}]},
        {"proxies": [{"selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}]},
        {"proxies": [], "proxy": {"name": "p"}},  # one form or the other
        {"listener": {"bindPort": "8080"}},
        {"namespace": ["a"]},
    ],
)
def test_the_schema_refuses_what_load_config_refuses(
    config: dict[str, Any], schema: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, schema, cls=jsonschema.Draft202012Validator)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    code, out, err = run("render", "-f", str(EXAMPLES / "upstreams"), "--config", str(path))
    assert (code, out) == (2, "")  # one line naming the file and the key
    assert err.startswith(f"error: {path}: ")


def test_the_short_form_is_described() -> None:
    short = {
        "proxy": {"name": "p"},
        "listener": {"bindPort": 8081},
        "strategy": {"kind": "host-header", "domainTemplates": ["{name}"]},
    }
    code, out, err = run("config", "schema")
    assert code == 0, err
    jsonschema.validate(short, json.loads(out), cls=jsonschema.Draft202012Validator)
