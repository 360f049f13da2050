"""The configuration file: both of its forms, its defaults, and errors that name the key at fault."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from proxycontroller.config import ConfigError, ControllerConfig, load_config
from proxycontroller.testing import render
from proxycontroller.translate.registry import StrategyError, StrategyRegistry
from proxycontroller.validate.desired import ProxyLogic
from tests.conftest import REPO
from tests.unit.factories import kube_upstream

EXAMPLE_CONFIG = REPO / "examples" / "config.yaml"
STRATEGY = "proxies[0].listeners[0].strategies[0]"


def load_problem(tmp_path: Path, text: str) -> str:
    """What goes wrong when the controller starts with this configuration file: loading it, then resolving
    its strategies (as `run` and `render` do before anything else)."""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    try:
        ProxyLogic(load_config(path), StrategyRegistry.discover())
    except (ConfigError, StrategyError) as exc:
        return str(exc)
    raise AssertionError(f"accepted: {text}")


def with_strategy(**settings: object) -> str:
    return yaml.safe_dump({"proxies": [{"listeners": [{"strategies": [settings]}]}]})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            with_strategy(kind="host-header", options={"domainTemplates": ["{nme}"]}),
            f"{STRATEGY}.options.domainTemplates[0]: '{{nme}}': unknown field '{{nme}}'; known: {{name}}, {{namespace",
        ),
        (
            with_strategy(kind="host-header", options={"domainTemplates": ["{name}", "{name.__class__}.example.com"]}),
            f"{STRATEGY}.options.domainTemplates[1]: '{{name.__class__}}.example.com': no attribute access or indexing",
        ),
        (
            with_strategy(kind="host-header", options={"domainTemplates": ["{name!r}"]}),
            f"{STRATEGY}.options.domainTemplates[0]: '{{name!r}}': {{name}} may not carry a conversion",
        ),
        (
            with_strategy(kind="host-header", options={"domainTemplates": [""]}),
            f"{STRATEGY}.options.domainTemplates[0]: is empty",
        ),
        (
            with_strategy(kind="host-header", options={"domainTemplates": []}),
            f"{STRATEGY}.options.domainTemplates: must list at least one template",
        ),
        (
            with_strategy(kind="host-header", options={"domainTemplate": ["{name}"]}),
            f"{STRATEGY}.options.domainTemplate: Extra inputs are not permitted",
        ),
        (
            with_strategy(kind="path-prefix", options={"domains": "*"}),
            f"{STRATEGY}.options.domains: Input should be a valid tuple",
        ),
        (
            with_strategy(kind="host-heder"),
            f"{STRATEGY}.kind: unknown strategy 'host-heder'; known: host-header, https-redirect, path-prefix, plugin",
        ),
        (
            "strategy: {domainTemplates: ['{nme}']}\n",  # the short form: the key as written there
            "strategy.domainTemplates[0]: '{nme}': unknown field '{nme}'",
        ),
    ],
)
def test_a_bad_strategy_setting_is_refused_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    assert load_problem(tmp_path, text).startswith(message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "proxies: [{listeners: [{bindPort: true}]}]",
            "proxies[0].listeners[0].bindPort: Input should be a valid integer",
        ),
        ("proxies: [{listeners: [{bindPort: '8080'}]}]", "proxies[0].listeners[0].bindPort: Input should be a valid"),
        ("proxies: [{listeners: [{bindPort: 0}]}]", "proxies[0].listeners[0].bindPort: Input should be greater than"),
        ("proxies: [{}, {listeners: [{}, {bindAddres: '::'}]}]", "proxies[1].listeners[1].bindAddres: Extra inputs"),
        (
            "proxies: [{listeners: [{sslConfigurations: [{secretRef: {namespace: gloo-system}}]}]}]",
            "proxies[0].listeners[0].sslConfigurations[0].secretRef.name: Field required",
        ),
        ("proxies: [{name: a}, {name: a}]", "proxies[1].name: Proxy gloo-system/a is also proxies[0]"),
        ("proxies: []", "proxies: must list at least one Proxy"),
        ("namespaces: []", "namespaces: must list at least one namespace"),
        ("reconcile: {passTimeoutSeconds: 0}", "reconcile.passTimeoutSeconds: Input should be greater than 0"),
        ("proxy: {name: a}\nproxies: [{name: b}]", "use either `proxies` or the short form"),
        ("listener: [8080]", "listener must be a mapping, got list"),
        ("- a list", "expected a mapping at the top level, got list"),
        ("proxies: [", "not valid YAML"),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    problem = load_problem(tmp_path, text)
    assert problem.startswith(f"{tmp_path / 'config.yaml'}: ")
    assert message in problem


def test_an_empty_file_or_none_is_the_seeds_configuration(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(empty) == load_config(None) == ControllerConfig()
    (proxy,) = ControllerConfig().proxies
    assert (proxy.namespace, proxy.name) == ("gloo-system", "my-cool-proxy")
    (listener,) = proxy.listeners
    assert (listener.name, listener.bind_address, listener.bind_port) == ("my-amazing-listener", "::", 8080)
    assert [s.kind for s in listener.strategies] == ["host-header"]


SHORT = """
proxy: {name: edge, namespace: gloo-system}
listener: {name: web, bindAddress: "0.0.0.0", bindPort: 8081}
namespaces: ["*"]
strategy: {kind: host-header, domainTemplates: ["{name}", "{name}.{namespace}.example.com"]}
"""

LONG = """
namespaces: ["*"]
proxies:
  - name: edge
    namespace: gloo-system
    listeners:
      - name: web
        bindAddress: "0.0.0.0"
        bindPort: 8081
        strategies:
          - kind: host-header
            options: {domainTemplates: ["{name}", "{name}.{namespace}.example.com"]}
"""


def test_the_short_form_and_the_long_form_give_the_same_proxy(tmp_path: Path) -> None:
    (tmp_path / "short.yaml").write_text(SHORT)
    (tmp_path / "long.yaml").write_text(LONG)
    short, long = load_config(tmp_path / "short.yaml"), load_config(tmp_path / "long.yaml")
    assert short.model_dump() == long.model_dump()  # equal but for how their errors name keys
    upstreams = [kube_upstream("a"), kube_upstream("b", "team-x")]
    rendered = render(upstreams, short)
    assert rendered == render(upstreams, long)
    assert rendered.proxy("edge")["spec"]["listeners"][0]["bindPort"] == 8081
    assert [host["domains"] for host in rendered.virtual_hosts()] == [
        ["a", "a.gloo-system.example.com"],
        ["b", "b.team-x.example.com"],
    ]


def test_the_short_forms_domain_templates_join_its_other_options() -> None:
    config = ControllerConfig.model_validate(
        {"strategy": {"kind": "plugin", "plugin": "m:f", "options": {"x": 1}, "domainTemplates": ["{name}"]}}
    )
    (strategy,) = config.proxies[0].listeners[0].strategies
    assert (strategy.kind, strategy.plugin) == ("plugin", "m:f")
    assert strategy.options == {"x": 1, "domainTemplates": ["{name}"]}


def test_the_example_file_lists_the_defaults_in_the_long_form() -> None:
    example = load_config(EXAMPLE_CONFIG)
    default = ControllerConfig()
    assert example.model_dump(exclude={"proxies"}) == default.model_dump(exclude={"proxies"})
    without_strategies = {"proxies": {"__all__": {"listeners": {"__all__": {"strategies"}}}}}
    assert example.model_dump(exclude=without_strategies) == default.model_dump(exclude=without_strategies)
    # The strategies are the same once their options are resolved ({} and the default templates, spelled out).
    registry = StrategyRegistry.discover()
    assert ProxyLogic(example, registry).translator.strategies == ProxyLogic(default, registry).translator.strategies
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    assert "proxies" in raw
    assert not {"proxy", "listener", "strategy"} & raw.keys()


def test_the_example_files_short_form_gives_the_same_proxy(tmp_path: Path) -> None:
    lines = EXAMPLE_CONFIG.read_text().split("# The short form", 1)[1].splitlines()[1:]
    short = tmp_path / "short.yaml"
    short.write_text("\n".join(line.removeprefix("#   ") for line in lines if line.startswith("#   ")))
    assert "strategy" in yaml.safe_load(short.read_text())
    upstreams = [kube_upstream("a"), kube_upstream("b")]
    assert render(upstreams, load_config(short)) == render(upstreams, load_config(EXAMPLE_CONFIG))


def test_the_configuration_is_immutable() -> None:
    config = ControllerConfig()
    assert isinstance(config.proxies, tuple)
    with pytest.raises(ValueError, match="frozen"):
        config.proxies[0].listeners[0].bind_port = 1  # type: ignore[misc]
