"""Hostile and mistaken configuration files, end to end through the installed `proxycontroller` command.

Every mistake stops both `render` and `run` before anything is read or written: exit status 2, nothing on
stdout, one line on stderr naming the file and the key as the user wrote it (the short form's keys too), and no
traceback. `run` is a real process in Gloo's directory layout: a mistake that slipped through would start the
controller, and the time limit would fail the test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from proxycontroller.config import ConfigError, ControllerConfig, ProxySettings
from proxycontroller.testing import render
from tests.conftest import REPO
from tests.unit.factories import kube_upstream

COMMAND = Path(sys.executable).parent / "proxycontroller"
EXAMPLES = REPO / "examples" / "upstreams"
LISTENER = "proxies[0].listeners[0]"
STRATEGY = f"{LISTENER}.strategies[0]"
TEMPLATES = f"{STRATEGY}.options.domainTemplates"


def with_templates(*templates: str) -> str:
    return yaml.safe_dump({"proxies": [{"listeners": [{"strategies": [{"options": {"domainTemplates": templates}}]}]}]})


def with_listener(**settings: object) -> str:
    return yaml.safe_dump({"proxies": [{"listeners": [settings]}]})


def with_proxy(**settings: object) -> str:
    return yaml.safe_dump({"proxies": [settings]})


def refusals(tmp_path: Path, text: str) -> dict[str, str]:
    """What `render` and `run` print when started with this configuration file, each checked to have stopped
    as a user's mistake should: status 2, nothing on stdout, one error line naming the file, no traceback."""
    config = tmp_path / "config.yaml"
    config.write_text(text)
    gloo_dir = tmp_path / "gloo"
    for kind in ("upstreams", "proxies"):
        (gloo_dir / kind).mkdir(parents=True, exist_ok=True)
    commands = {
        "render": ["render", "-f", str(EXAMPLES), "--config", str(config)],
        "run": ["run", "--config", str(config), "--config-dir", str(gloo_dir), "--probe-address", ""],
    }
    # Both at once: a start costs a quarter of a second, and there are many cases.
    started = {
        name: subprocess.Popen([str(COMMAND), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, args in commands.items()
    }
    outputs = {}
    try:
        for name, process in started.items():
            outputs[name] = process.communicate(timeout=30)
    finally:
        for process in started.values():  # a controller that started after all (the test fails) does not outlive it
            process.kill()
            process.wait()
    found = {}
    for name, (stdout, stderr) in outputs.items():
        process = started[name]
        assert "Traceback" not in stderr, stderr
        assert (process.returncode, stdout) == (2, ""), f"{name}: {process.returncode}: {stderr}"
        assert stderr.count("\n") == 1, stderr
        assert stderr.startswith(f"error: {config}: "), stderr
        assert not (gloo_dir / "proxies").joinpath("gloo-system").exists(), "run wrote a Proxy"
        found[name] = stderr.removeprefix(f"error: {config}: ").rstrip("\n")
    return found


def assert_refused(tmp_path: Path, text: str, key: str, problem: str) -> None:
    for command, message in refusals(tmp_path, text).items():
        assert message.startswith(f"{key}: "), f"{command}: {message}"
        assert problem in message, f"{command}: {message}"


# --- domain templates: only the documented fields, checked when the configuration loads --------------------------

TEMPLATE_CASES = [
    ("{nme}", "unknown field '{nme}'; known: {name}, {namespace}"),
    ("{name.__class__}", "no attribute access or indexing"),
    ("{name[0]}", "no attribute access or indexing"),
    ("{0}", "a positional field {0}"),
    ("{}", "a positional field {}"),
    ("{name!r}", "{name} may not carry a conversion or format spec"),
    ("{name:>10}", "{name} may not carry a conversion or format spec"),
    ("", "is empty"),
    ("   ", "holds whitespace or a control character"),
    ("{name} .example.com", "holds whitespace or a control character"),
    ("{name}\r\n.example.com", "holds whitespace or a control character"),
    ("{name", "is not a template"),
    ("example.com", "uses no field"),  # the same domain for every upstream
    ("{{name}}", "uses no field"),  # literal braces: a constant
    ("{label}", "{label} needs a key: {label[KEY]}"),
    ("{label[Bad Key]}", "label key 'Bad Key': its name must be 1 to 63"),
    ("{annotation[a/b/c]}", "annotation key 'a/b/c': its prefix (before '/') must be a DNS-1123 subdomain"),
    ("{label[app].x}", "no attribute access or indexing"),
    ("{service.__class__}", "no attribute access or indexing"),
]


@pytest.mark.parametrize(("template", "problem"), TEMPLATE_CASES, ids=[repr(t) for t, _ in TEMPLATE_CASES])
def test_a_bad_domain_template_is_refused_naming_its_position(tmp_path: Path, template: str, problem: str) -> None:
    assert_refused(tmp_path, with_templates("{name}", template), f"{TEMPLATES}[1]", problem)


def test_no_template_at_all_is_refused(tmp_path: Path) -> None:
    assert_refused(tmp_path, with_templates(), TEMPLATES, "must list at least one template")


def test_a_template_that_makes_an_empty_domain_for_one_upstream_leaves_out_only_that_one() -> None:
    config = {"namespaces": ["*"], "strategy": {"domainTemplates": ["{name}"]}}
    nameless = kube_upstream("")
    rendered = render([nameless, kube_upstream("web")], config)
    assert [host["name"] for host in rendered.virtual_hosts()] == ["web"]
    (warning,) = rendered.warnings
    assert "left out Upstream gloo-system/: '{name}' makes an empty domain" in warning


# --- the short form: errors name the keys as written there -----------------------------------------------------

SHORT_FORM_CASES = [
    ("strategy: {domainTemplates: ['{nme}']}", "strategy.domainTemplates[0]", "unknown field '{nme}'"),
    ("strategy: {domain_templates: ['{nme}']}", "strategy.domain_templates[0]", "unknown field '{nme}'"),
    (
        "strategy: {options: {domainTemplates: ['{name}', '{name.x}']}}",
        "strategy.options.domainTemplates[1]",
        "no attribute access",
    ),
    ("strategy: {kind: path-prefix, options: {domains: []}}", "strategy.options.domains", "at least one domain"),
    ("strategy: {kind: nope}", "strategy.kind", "unknown strategy 'nope'"),
    ("strategy: {kind: plugin, plugin: nocolon}", "strategy.plugin", "must be 'module:function'"),
    ("strategy: {kind: ''}", "strategy.kind", "at least 1 character"),
    ("listener: {bindPort: true}", "listener.bindPort", "valid integer"),
    ("listener: {bindAddress: not an ip}", "listener.bindAddress", "'not an ip' is not an IP address"),
    ("listener: {name: ''}", "listener.name", "must not be empty"),
    (
        "listener: {sslConfigurations: [{secretRef: {namespace: gloo-system}}]}",
        "listener.sslConfigurations[0].secretRef.name",
        "Field required",
    ),
    ("proxy: {name: 'Bad Name/..'}", "proxy.name", "'Bad Name/..' is not a Kubernetes object name"),
    ("proxy: {namespace: Gloo-System}", "proxy.namespace", "is not a Kubernetes namespace name"),
    ("proxy: {namespaces: []}", "proxy.namespaces", "must list at least one namespace"),
    ("proxy: {nam: x}", "proxy.nam", "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("text", "key", "problem"), SHORT_FORM_CASES, ids=[key for _, key, _ in SHORT_FORM_CASES])
def test_a_short_form_mistake_names_the_short_forms_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    assert_refused(tmp_path, text + "\n", key, problem)


# --- what Kubernetes and Gloo accept ---------------------------------------------------------------------------

VALUE_CASES = [
    # Gloo refuses the whole Proxy for a bindAddress that is not an IP address (Go's net.ParseIP).
    (with_listener(bindAddress="not an ip"), f"{LISTENER}.bindAddress", "is not an IP address"),
    (with_listener(bindAddress="localhost"), f"{LISTENER}.bindAddress", "is not an IP address"),
    (with_listener(bindAddress="010.0.0.1"), f"{LISTENER}.bindAddress", "is not an IP address"),
    (with_listener(bindAddress="fe80::1%eth0"), f"{LISTENER}.bindAddress", "no IPv6 zone"),
    # An empty name was written, dropped by Gloo when it rewrote the file, and the Proxy was then unreadable.
    (with_listener(name=""), f"{LISTENER}.name", "must not be empty"),
    (with_listener(name="web\nsite"), f"{LISTENER}.name", "'web\\nsite' holds a control character"),
    # Ports are integers, not booleans (true was port 1) nor strings nor floats.
    (with_listener(bindPort=True), f"{LISTENER}.bindPort", "valid integer"),
    (with_listener(bindPort="8080"), f"{LISTENER}.bindPort", "valid integer"),
    (with_listener(bindPort=8080.0), f"{LISTENER}.bindPort", "valid integer"),
    (with_listener(bindPort=0), f"{LISTENER}.bindPort", "greater than or equal to 1"),
    (with_listener(bindPort=65536), f"{LISTENER}.bindPort", "less than or equal to 65535"),
    (with_listener(strategies=[]), f"{LISTENER}.strategies", "must list at least one strategy"),
    (
        with_listener(strategies=[{"kind": "path-prefix", "options": {"domains": ["a", "A"]}}]),
        f"{STRATEGY}.options.domains",
        "lists the domain 'A' twice",
    ),
    (
        with_listener(strategies=[{"kind": "path-prefix", "options": {"domains": ["a b"]}}]),
        f"{STRATEGY}.options.domains[0]",
        "is not a domain",
    ),
    (
        with_listener(strategies=[{"kind": "path-prefix", "options": {"name": ""}}]),
        f"{STRATEGY}.options.name",
        "cannot name a virtual host",
    ),
    # A Proxy name Kubernetes refuses was retried forever instead of failing at start.
    (with_proxy(name="Bad Name/.."), "proxies[0].name", "is not a Kubernetes object name"),
    (with_proxy(name=""), "proxies[0].name", "is not a Kubernetes object name"),
    (with_proxy(name="a" * 254), "proxies[0].name", "'" + "a" * 60 + "'... is not a Kubernetes object name"),
    (with_proxy(name="-a"), "proxies[0].name", "is not a Kubernetes object name"),
    (with_proxy(namespace="team.a"), "proxies[0].namespace", "is not a Kubernetes namespace name"),
    (with_proxy(namespace="a" * 64), "proxies[0].namespace", "is not a Kubernetes namespace name"),
    (with_proxy(namespaces=["team-a", "Team_B"]), "proxies[0].namespaces[1]", "'Team_B' is not a Kubernetes namespace"),
    (with_proxy(listeners=[]), "proxies[0].listeners", "must list at least one listener"),
    (
        with_proxy(listeners=[{"name": "a"}, {"name": "a", "bindPort": 8081}]),
        "proxies[0].listeners[1].name",
        "'a' is also the name of listeners[0]",
    ),
    (
        with_proxy(listeners=[{"name": "a"}, {"name": "b"}]),
        "proxies[0].listeners[1].bindPort",
        "8080 is also the bind port of listeners[0]",
    ),
    ("proxies: [{name: a}, {name: a}]", "proxies[1].name", "Proxy gloo-system/a is also proxies[0]"),
    ("namespaces: [gloo-system, '']", "namespaces[1]", "'' is not a Kubernetes namespace name"),
    ("namespaces: ['* ']", "namespaces[0]", "is not a Kubernetes namespace name"),
    ("namespaces: []", "namespaces", "must list at least one namespace"),
    ("glooNamespace: gloo system", "glooNamespace", "is not a Kubernetes namespace name"),
    # The instance is a label value and part of the Lease name.
    ("instance: Team_A", "instance", "'Team_A' cannot be used: it is a Kubernetes label value"),
    ("instance: ''", "instance", "cannot be used"),
    ("instance: a-", "instance", "cannot be used"),
    ("instance: " + "a" * 64, "instance", "cannot be used"),
    (yaml.safe_dump({"proxies": [{"listeners": [{"strategies": [{"kind": ""}]}]}]}), f"{STRATEGY}.kind", "at least 1"),
    ("reconcile: {leadingEdge: 'yes'}", "reconcile.leadingEdge", "valid boolean"),
    ("reconcile: {passTimeoutSeconds: .inf}", "reconcile.passTimeoutSeconds", "finite number"),
    ("reconcile: {coalesceWindowSeconds: .nan}", "reconcile.coalesceWindowSeconds", "finite number"),
    ("reconcile: {compressThresholdBytes: true}", "reconcile.compressThresholdBytes", "valid integer"),
    ("reconcile: {fieldManager: " + "m" * 129 + "}", "reconcile.fieldManager", "at most 128 characters"),
]


@pytest.mark.parametrize(("text", "key", "problem"), VALUE_CASES, ids=[key for _, key, _ in VALUE_CASES])
def test_a_value_kubernetes_or_gloo_would_refuse_is_refused_at_start(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    assert_refused(tmp_path, text, key, problem)


def test_a_key_with_a_newline_is_quoted_and_many_mistakes_are_counted_not_listed(tmp_path: Path) -> None:
    assert_refused(tmp_path, 'proxy: {"a\\nb": 1}\n', "proxy['a\\nb']", "Extra inputs are not permitted")
    options = yaml.safe_dump({"proxies": [{"listeners": [{"strategies": [{"options": {"x\ny": 1}}]}]}]})
    assert_refused(tmp_path, options, f"{STRATEGY}.options['x\\ny']", "Extra inputs are not permitted")
    many = yaml.safe_dump({"namespaces": [f"N{i}" for i in range(1000)]})
    for message in refusals(tmp_path, many).values():
        assert message.startswith("namespaces[0]: 'N0' is not a Kubernetes namespace name")
        assert message.endswith("; and 997 more")


def test_what_kubernetes_and_gloo_accept_still_loads() -> None:
    config = ControllerConfig.model_validate(
        {
            "proxies": [
                {
                    "name": "edge.example-1",
                    "namespace": "a" * 63,
                    "namespaces": ["*"],
                    "listeners": [
                        {"name": "http", "bindAddress": "0.0.0.0", "bindPort": 1},
                        {"name": "Web Site (TLS)", "bindAddress": "::ffff:10.0.0.1", "bindPort": 65535},
                        {"name": "v6", "bindAddress": "2001:db8::1", "bindPort": 8080},
                    ],
                }
            ],
            "instance": "team-a.v2",
            "glooNamespace": "gloo-system",
        }
    )
    assert [listener.bind_port for listener in config.proxies[0].listeners] == [1, 65535, 8080]


# --- the command line's overrides ------------------------------------------------------------------------------


def test_the_command_lines_namespaces_are_checked_like_the_files() -> None:
    config = ControllerConfig()
    assert config.with_namespaces(["team-a", "*"]).namespaces == ("team-a", "*")
    assert config.with_proxy_namespace("team-a").proxy_namespaces == ("team-a",)
    with pytest.raises(ConfigError, match=r"^--namespace: 'Team A' is not a Kubernetes namespace name"):
        config.with_namespaces(["gloo-system", "Team A"])
    with pytest.raises(ConfigError, match=r"^--proxy-namespace: 'a/b' is not a Kubernetes namespace name"):
        config.with_proxy_namespace("a/b")


def test_moving_two_proxies_into_one_namespace_must_not_merge_them() -> None:
    config = ControllerConfig(proxies=(ProxySettings(name="p", namespace="a"), ProxySettings(name="p", namespace="b")))
    with pytest.raises(ConfigError, match=r"^--proxy-namespace: proxies\[1\]: Proxy c/p is also proxies\[0\]$"):
        config.with_proxy_namespace("c")


# --- advisories: accepted, but probably not meant --------------------------------------------------------------


def test_the_seeds_configuration_has_no_advisory() -> None:
    assert ControllerConfig().advisories() == ()


def test_a_proxy_outside_glooss_write_namespace_is_an_advisory() -> None:
    config = ControllerConfig.model_validate({"proxy": {"name": "b", "namespace": "a"}})
    assert config.advisories() == (
        "Proxy a/b is in namespace a, but Gloo (glooNamespace gloo-system) reads Proxies only from its write namespace",
    )
    assert config.with_proxy_namespace("gloo-system").advisories() == ()
    assert ControllerConfig.model_validate({"proxy": {"namespace": "a"}, "glooNamespace": "a"}).advisories() == ()


def test_a_privileged_port_and_a_redundant_namespace_list_are_advisories() -> None:
    config = ControllerConfig.model_validate(
        {"namespaces": ["*", "team-a"], "proxies": [{"namespaces": ["*"], "listeners": [{"bindPort": 80}]}]}
    )
    first, second = config.advisories()
    assert first.startswith("Proxy gloo-system/my-cool-proxy listener 'my-amazing-listener' binds port 80: ")
    assert second == "namespaces: '*' routes every namespace; the other names listed add nothing"
