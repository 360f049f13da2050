"""Every example under examples/: its configuration loads, `proxycontroller render` works on it with the
upstreams its README names, and every Proxy it prints passes Gloo's Proxy CRD schema."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from proxycontroller.config import load_config
from tests.conftest import REPO
from tests.unit.test_render_cli import proxy_schema, run

EXAMPLES = REPO / "examples"
UPSTREAMS = str(EXAMPLES / "upstreams")

# Each use case's configuration, the render arguments its README gives, and what the Proxies must route.
RENDERED = {
    "host-templates": (
        ["-f", str(EXAMPLES / "host-templates" / "upstreams")],
        {"my-cool-proxy": ["default-petstore-8080"]},
    ),
    "path-prefix": (["-f", UPSTREAMS], {"my-cool-proxy": ["all-upstreams"]}),
    "selection": (["-f", str(EXAMPLES / "selection" / "upstreams")], {"my-cool-proxy": ["default-petstore-8080"]}),
    "services": (
        ["-f", str(EXAMPLES / "services" / "inputs.yaml")],
        {"my-cool-proxy": ["default-dns-53", "default-petstore-8080", "default-petstore-9090", "reviews-tls"]},
    ),
    "shards": (
        ["-f", UPSTREAMS, "-n", "*"],
        {"edge-0": ["default-petstore-8080", "default-reviews-9080"], "edge-1": [], "edge-2": ["httpbin"]},
    ),
}


def config_files() -> list[Path]:
    """The configuration files among the examples (the rest are upstreams)."""
    found = [EXAMPLES / "config.yaml", *sorted(EXAMPLES.glob("*/config.yaml"))]
    found += sorted((EXAMPLES / "plugins").glob("*.yaml"))
    return [path for path in found if "Upstream" not in path.read_text() or path.name == "config.yaml"]


def test_every_use_case_has_its_example() -> None:
    assert set(RENDERED) <= {path.parent.name for path in config_files()}


@pytest.mark.parametrize("path", config_files(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_configuration_loads(path: Path) -> None:
    load_config(path)


@pytest.mark.parametrize("example", sorted(RENDERED))
def test_render_works_on_each_example_and_routes_what_its_readme_says(example: str, gloo_crds_dir: Path) -> None:
    arguments, routed = RENDERED[example]
    config = EXAMPLES / example / "config.yaml"
    code, out, err = run("render", *arguments, "--config", str(config))
    assert code == 0, err
    proxies = [document for document in yaml.safe_load_all(out) if document]
    schema = proxy_schema(gloo_crds_dir)
    found = {}
    for proxy in proxies:
        jsonschema.validate(proxy, schema)
        hosts = [h for listener in proxy["spec"]["listeners"] for h in listener["httpListener"]["virtualHosts"]]
        found[proxy["metadata"]["name"]] = [host["name"] for host in hosts]
    assert found == routed
    readme = (EXAMPLES / example / "README.md").read_text()
    assert f"--config examples/{example}/config.yaml" in readme


def test_the_path_prefix_example_routes_the_petstore_under_its_name_and_its_annotation() -> None:
    config = str(EXAMPLES / "path-prefix" / "config.yaml")
    for source, prefix in (
        (UPSTREAMS, "/default-petstore-8080"),
        (str(EXAMPLES / "path-prefix" / "upstreams"), "/pets"),
    ):
        code, out, err = run("render", "-f", source, "--config", config)
        assert code == 0, err
        (proxy,) = [document for document in yaml.safe_load_all(out) if document]
        (catch_all,) = proxy["spec"]["listeners"][0]["httpListener"]["virtualHosts"]
        petstore = [
            r for r in catch_all["routes"] if r["routeAction"]["single"]["upstream"]["name"] == "default-petstore-8080"
        ]
        assert [r["matchers"] for r in petstore] == [[{"prefix": f"{prefix}/"}], [{"exact": prefix}]]
        assert all(r["options"] == {"prefixRewrite": "/"} for r in petstore)


def test_the_host_templates_example_gives_the_petstore_five_domains_and_names_what_it_leaves_out() -> None:
    config = str(EXAMPLES / "host-templates" / "config.yaml")
    code, out, err = run("render", "-f", str(EXAMPLES / "host-templates" / "upstreams"), "--config", config)
    assert code == 0, err
    (proxy,) = [document for document in yaml.safe_load_all(out) if document]
    (host,) = proxy["spec"]["listeners"][0]["httpListener"]["virtualHosts"]
    assert host["domains"] == [
        "default-petstore-8080",
        "petstore.default.example.com",
        "petstore.example.com",
        "pets.example.com",
        "shop.example.com",
    ]
    assert (
        "left out Upstream gloo-system/default-reviews-9080: '{label[app]}.example.com': the upstream has no label"
        in err
    )
