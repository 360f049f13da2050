"""The public surface for people who write strategies: the package's names, entry point discovery, and the two
example plugins of the README (examples/plugins), through `proxycontroller.testing.render` and through
`proxycontroller render --config`."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml

import proxycontroller
from proxycontroller import NoOptions, Strategy, StrategyOptions, Upstream, VirtualHost, strategy
from proxycontroller.config import ControllerConfig
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.testing import render
from proxycontroller.translate import builtin, registry
from proxycontroller.translate.registry import ENTRY_POINT_GROUP, StrategyError, StrategyRegistry
from proxycontroller.validate.desired import ProxyLogic
from tests.conftest import REPO
from tests.unit.factories import kube_upstream
from tests.unit.test_translation import SEED_PROXY_SPEC

PLUGINS = REPO / "examples" / "plugins"
UPSTREAMS = REPO / "examples" / "upstreams"
CONSOLE_SCRIPT = Path(sys.executable).parent / "proxycontroller"

LoadPlugin = Callable[[str], Strategy[Any]]


@pytest.fixture
def load_plugin(monkeypatch: pytest.MonkeyPatch) -> LoadPlugin:
    """The strategy `module:function` of examples/plugins, imported as a configuration's `plugin:` would."""
    monkeypatch.syspath_prepend(str(PLUGINS))

    def load(reference: str) -> Strategy[Any]:
        module, _, name = reference.partition(":")
        found = getattr(importlib.import_module(module), name)
        assert isinstance(found, Strategy)
        return found

    return load


def labelled(name: str, app: str, track: str, namespace: str = "gloo-system") -> Upstream:
    return Upstream.model_validate(
        {
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": app, "track": track}},
            "spec": {"kube": {"serviceName": name, "serviceNamespace": "default", "servicePort": 8080}},
        }
    )


def ref(name: str, namespace: str = "gloo-system") -> dict[str, Any]:
    return {"upstream": {"name": name, "namespace": namespace}}


def plugin_config(plugin: str, **options: Any) -> dict[str, Any]:
    return {"proxies": [{"listeners": [{"strategies": [{"kind": "plugin", "plugin": plugin, "options": options}]}]}]}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, in a process whose PYTHONPATH holds examples/plugins."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([str(CONSOLE_SCRIPT), *args], capture_output=True, text=True, env=env, check=False)


# --- the package's surface -------------------------------------------------------------------------------------


def test_every_public_name_is_exported_and_the_strategy_decorator_fills_in_its_defaults() -> None:
    assert sorted(proxycontroller.__all__) == sorted(set(proxycontroller.__all__))
    for name in proxycontroller.__all__:
        assert getattr(proxycontroller, name) is not None, name

    @strategy()
    def by_team_label(upstream: Upstream, options: NoOptions) -> VirtualHost:
        raise AssertionError("not called")

    assert (by_team_label.name, by_team_label.options, by_team_label.each) == ("by-team-label", NoOptions, True)
    assert "by_team_label" in by_team_label.describe()


def test_strategy_options_use_camel_case_keys_refuse_unknown_ones_and_are_immutable() -> None:
    class Options(StrategyOptions):
        canary_weight: int = 10

    assert Options.model_validate({"canaryWeight": 5}).canary_weight == 5
    with pytest.raises(ValueError, match="canaryWieght"):
        Options.model_validate({"canaryWieght": 5})
    with pytest.raises(ValueError, match="frozen"):
        Options().canary_weight = 1  # type: ignore[misc]


def test_models_hold_tuples_and_refuse_changes() -> None:
    host = proxycontroller.virtual_host("a", ["a"], [proxycontroller.route_to(kube_upstream("a"))])
    assert isinstance(host.domains, tuple)
    assert isinstance(host.routes, tuple)
    with pytest.raises(ValueError, match="frozen"):
        host.name = "b"  # type: ignore[misc]


# --- entry points ----------------------------------------------------------------------------------------------


def test_the_built_in_strategies_are_registered_as_entry_points() -> None:
    points = {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)}
    assert points["host-header"].value == "proxycontroller.translate.builtin:host_header"
    assert points["path-prefix"].value == "proxycontroller.translate.builtin:path_prefix"
    assert points["host-header"].load() is builtin.host_header
    assert points["path-prefix"].load() is builtin.path_prefix


def test_discover_finds_the_built_in_strategies_through_importlib_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "BUILTIN_STRATEGIES", ())  # what discover() knows without the entry points
    found = StrategyRegistry.discover()
    assert {"host-header", "path-prefix"} <= set(found.names)
    resolved = found.resolve(ControllerConfig().proxies[0].listeners[0].strategies[0], "here")
    assert resolved.strategy is builtin.host_header


def install_distribution(site: Path, entry_points_text: str) -> None:
    """A package installed the way pip would leave it, as far as importlib.metadata can tell."""
    info = site / "canary_routing-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: canary-routing\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points_text)


def test_a_package_registers_a_strategy_under_the_entry_point_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_distribution(tmp_path / "site", f"[{ENTRY_POINT_GROUP}]\ncanary = canary:canary\n")
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    found = StrategyRegistry.discover()
    assert found.names == ("canary", "host-header", "https-redirect", "path-prefix")
    config = ControllerConfig.model_validate(
        {"proxies": [{"listeners": [{"strategies": [{"kind": "canary", "options": {"canaryWeight": 50}}]}]}]}
    )
    upstreams = [labelled("web-1", "web", "stable"), labelled("web-2", "web", "canary")]
    desired = ProxyLogic(config, found).desired(Snapshot.of(upstreams))
    assert b'"weight":50' in desired.objects[0].spec.json


def test_a_broken_entry_point_is_an_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_distribution(tmp_path / "site", f"[{ENTRY_POINT_GROUP}]\ncanary = no_such_module:canary\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(StrategyError, match=r"entry point canary = no_such_module:canary: cannot load"):
        StrategyRegistry.discover()


# --- the seed as a plugin --------------------------------------------------------------------------------------


def test_the_seed_plugin_renders_the_seeds_proxy(load_plugin: LoadPlugin) -> None:
    seed = load_plugin("seed_plugin:seed")
    by_name = render([kube_upstream("default-petstore-8080")], plugin_config("seed_plugin:seed"))
    assert by_name.warnings == ()
    assert by_name.proxy()["spec"] == SEED_PROXY_SPEC
    registered = {"proxies": [{"listeners": [{"strategies": [{"kind": "seed"}]}]}]}
    assert render([kube_upstream("default-petstore-8080")], registered, [seed]) == by_name


def test_the_seed_plugin_takes_domain_templates(load_plugin: LoadPlugin) -> None:
    load_plugin("seed_plugin:seed")
    config = plugin_config("seed_plugin:seed", domainTemplates=["{name}", "{name}.{namespace}.example.com"])
    (host,) = render([kube_upstream("a")], config).virtual_hosts()
    assert host["domains"] == ["a", "a.gloo-system.example.com"]


def test_render_cli_with_the_seed_plugin_config_prints_what_the_built_in_default_prints() -> None:
    plugin = run_cli("render", "-f", str(UPSTREAMS), "--config", str(PLUGINS / "seed.yaml"))
    assert plugin.returncode == 0, plugin.stderr
    builtin_default = run_cli("render", "-f", str(UPSTREAMS))
    assert builtin_default.returncode == 0, builtin_default.stderr
    assert plugin.stdout == builtin_default.stdout
    (proxy,) = yaml.safe_load_all(plugin.stdout)
    assert (
        proxy["spec"]["listeners"][0]["httpListener"]["virtualHosts"][0]
        == (SEED_PROXY_SPEC["listeners"][0]["httpListener"]["virtualHosts"][0])
    )


# --- weighted canary routing -----------------------------------------------------------------------------------


def test_canary_splits_each_apps_requests_by_the_weight_and_routes_an_app_without_canary_to_stable(
    load_plugin: LoadPlugin,
) -> None:
    canary = load_plugin("canary:canary")
    upstreams = [
        labelled("web-v2", "web", "canary"),
        labelled("web-v1", "web", "stable"),
        labelled("api-v1", "api", "stable"),
        kube_upstream("unlabelled"),
    ]
    config = {
        "proxies": [
            {"listeners": [{"strategies": [{"kind": "canary", "options": {"canaryWeight": 25, "domainSuffix": ".x"}}]}]}
        ]
    }
    rendered = render(upstreams, config, [canary])
    assert rendered.warnings == ()
    assert rendered.virtual_hosts() == [
        {
            "name": "api",
            "domains": ["api.x"],
            "routes": [{"matchers": [{"prefix": "/"}], "routeAction": {"single": ref("api-v1")}}],
        },
        {
            "name": "web",
            "domains": ["web.x"],
            "routes": [
                {
                    "matchers": [{"prefix": "/"}],
                    "routeAction": {
                        "multi": {
                            "destinations": [
                                {"destination": ref("web-v1"), "weight": 75},
                                {"destination": ref("web-v2"), "weight": 25},
                            ]
                        }
                    },
                }
            ],
        },
    ]
    assert render(upstreams, plugin_config("canary:canary", canaryWeight=25, domainSuffix=".x")) == rendered


def test_canary_skips_what_it_cannot_pair_naming_each_upstream(load_plugin: LoadPlugin) -> None:
    load_plugin("canary:canary")
    upstreams = [
        labelled("web-v1", "web", "stable"),
        labelled("web-v2", "web", "canary"),
        labelled("web-v3", "web", "canary"),
        labelled("api-v1", "api", "beta"),
        labelled("shop-v2", "shop", "canary"),
    ]
    rendered = render(upstreams, plugin_config("canary:canary"))
    assert [host["name"] for host in rendered.virtual_hosts()] == ["web"]
    assert sorted(rendered.warnings) == sorted(
        [
            "strategy 'canary' (canary.canary): left out Upstream gloo-system/api-v1: "
            "label track='beta', expected one of stable, canary",
            "strategy 'canary' (canary.canary): left out Upstream gloo-system/web-v3: "
            "app 'web' already has its canary track: Upstream gloo-system/web-v2",
            "strategy 'canary' (canary.canary): left out Upstream gloo-system/shop-v2: "
            "app 'shop' has a canary but no stable track",
        ]
    )


def test_canary_weight_is_a_percentage(load_plugin: LoadPlugin) -> None:
    load_plugin("canary:canary")
    config = ControllerConfig.model_validate(plugin_config("canary:canary", canaryWeight=101))
    with pytest.raises(StrategyError, match=r"strategies\[0\]\.options\.canaryWeight: Input should be less than"):
        ProxyLogic(config, StrategyRegistry.discover())


def test_render_cli_with_the_canary_config_splits_web_and_routes_api_to_stable() -> None:
    result = run_cli(
        "render", "-f", str(PLUGINS / "canary-upstreams.yaml"), "--config", str(PLUGINS / "canary.yaml"), "-o", "json"
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    proxy = yaml.safe_load(result.stdout)
    assert proxy["metadata"]["name"] == "canary-proxy"
    hosts = proxy["spec"]["listeners"][0]["httpListener"]["virtualHosts"]
    assert [(host["name"], host["domains"]) for host in hosts] == [
        ("api", ["api.example.com"]),
        ("web", ["web.example.com"]),
    ]
    assert hosts[0]["routes"][0]["routeAction"] == {"single": ref("api-v1")}
    assert hosts[1]["routes"][0]["routeAction"]["multi"]["destinations"] == [
        {"destination": ref("web-v1"), "weight": 80},
        {"destination": ref("web-v2"), "weight": 20},
    ]


def test_render_cli_without_the_plugin_on_its_path_names_the_module_it_cannot_import() -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    bare = subprocess.run(
        [str(CONSOLE_SCRIPT), "render", "-f", str(UPSTREAMS), "--config", str(PLUGINS / "canary.yaml")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert (bare.returncode, bare.stdout) == (2, "")
    assert "proxies[0].listeners[0].strategies[0].plugin: cannot import 'canary'" in bare.stderr


# --- the README shows the example files as they are ------------------------------------------------------------


def readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


@pytest.mark.parametrize("example", ["seed_plugin.py", "canary.py", "seed.yaml", "canary.yaml"])
def test_the_readme_shows_each_example_file_whole(example: str) -> None:
    blocks = re.findall(r"```(?:python|yaml)\n(.*?)```", readme_section("Writing a strategy"), re.DOTALL)
    marker = f"# examples/plugins/{example}\n"
    shown = [block.removeprefix(marker) for block in blocks if block.startswith(marker)]
    assert shown == [(PLUGINS / example).read_text()]


def test_the_readmes_unit_test_of_the_canary_passes(load_plugin: LoadPlugin) -> None:
    load_plugin("canary:canary")
    marker = "# test_canary.py\n"
    (block,) = [
        b
        for b in re.findall(r"```python\n(.*?)```", readme_section("Writing a strategy"), re.DOTALL)
        if b.startswith(marker)
    ]
    namespace: dict[str, Any] = {}
    exec(compile(block, "README.md:test_canary.py", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 1
    tests[0]()
