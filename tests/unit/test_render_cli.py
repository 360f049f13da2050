"""`proxycontroller render` end to end, through the real console script entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from proxycontroller.cli.main import main
from proxycontroller.model.encoding import from_cr, to_cr
from proxycontroller.model.resources import Proxy
from tests.conftest import REPO
from tests.unit.test_translation import SEED_PROXY_SPEC

EXAMPLES = REPO / "examples" / "upstreams"


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def proxy_schema(crds_dir: Path) -> dict[str, Any]:
    crd = yaml.safe_load((crds_dir / "gloo.solo.io_v1_Proxy.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def test_render_on_the_examples_prints_the_seed_proxy_valid_for_glooss_crd(gloo_crds_dir: Path) -> None:
    code, out, err = run("render", "-f", str(EXAMPLES))
    assert code == 0, err
    documents = [d for d in yaml.safe_load_all(out) if d]
    assert len(documents) == 1
    (proxy,) = documents
    spec = proxy["spec"]
    virtual_hosts = spec["listeners"][0]["httpListener"]["virtualHosts"]
    # The examples hold two gloo-system upstreams; the one in "default" is not routed by default.
    assert [vh["name"] for vh in virtual_hosts] == ["default-petstore-8080", "default-reviews-9080"]
    seed_host = SEED_PROXY_SPEC["listeners"][0]["httpListener"]["virtualHosts"][0]
    assert virtual_hosts[0] == seed_host
    jsonschema.validate(proxy, proxy_schema(gloo_crds_dir))
    assert to_cr(from_cr(Proxy, proxy)) == proxy


def test_a_broken_proxy_fails_the_crd_schema_check(gloo_crds_dir: Path) -> None:
    """The schema check above can fail: a Proxy whose bindPort is a string is refused."""
    bad = {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Proxy",
        "metadata": {"name": "p"},
        "spec": {"listeners": [{"name": "l", "bindAddress": "::", "bindPort": "eighty"}]},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, proxy_schema(gloo_crds_dir))


def test_render_output_is_byte_identical_whatever_the_input_order(tmp_path: Path) -> None:
    files = sorted(EXAMPLES.rglob("*.yaml"))
    code1, out1, _ = run("render", "-n", "*", *[a for f in files for a in ("-f", str(f))])
    code2, out2, _ = run("render", "-n", "*", *[a for f in reversed(files) for a in ("-f", str(f))])
    assert code1 == code2 == 0
    assert out1 == out2


def test_render_reads_stdin_json_flat_form_and_lists_and_ignores_other_kinds(
    gloo_petstore_upstream_file: Path,
) -> None:
    flat = yaml.safe_load(gloo_petstore_upstream_file.read_text())
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "petstore", "namespace": "default"},
    }
    listed = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            service,
            {
                "apiVersion": "gloo.solo.io/v1",
                "kind": "Upstream",
                "metadata": {"name": "listed", "namespace": "gloo-system"},
                "spec": {"static": {"hosts": [{"addr": "a"}]}},
            },
        ],
    }
    stdin = yaml.safe_dump_all([flat, listed, service])
    code, out, err = run("render", "-f", "-", "-o", "json", stdin=stdin)
    assert code == 0, err
    proxy = json.loads(out)
    names = [vh["name"] for vh in proxy["spec"]["listeners"][0]["httpListener"]["virtualHosts"]]
    assert names == ["listed", "petstore"]


def test_render_reads_gloos_directory_layout(gloo_module_dir: Path) -> None:
    code, out, err = run("render", "-f", str(gloo_module_dir / "install" / "docker-compose-file" / "source_data"))
    assert code == 0, err
    (proxy,) = [d for d in yaml.safe_load_all(out) if d]
    assert [vh["name"] for vh in proxy["spec"]["listeners"][0]["httpListener"]["virtualHosts"]] == ["petstore"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("kind: [unclosed", "bad.yaml: document 1: not valid YAML (line 2)"),
        (
            "---\napiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: ok, namespace: gloo-system}\n"
            "spec: {static: {hosts: [{addr: a}]}}\n---\napiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {}\n",
            "bad.yaml: document 2: Upstream has no metadata.name",
        ),
        ('{"kind": ', "bad.yaml: document 1: not valid JSON"),
        ("- just\n- a list of strings\n", "bad.yaml: document 1: expected a mapping, got str"),
    ],
)
def test_bad_input_is_one_line_naming_file_and_document_exit_2_and_nothing_on_stdout(
    tmp_path: Path, content: str, message: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    code, out, err = run("render", "-f", str(EXAMPLES), "-f", str(bad))
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_missing_path_and_bad_config_are_reported(tmp_path: Path) -> None:
    code, out, err = run("render", "-f", str(tmp_path / "nope"))
    assert (code, out) == (2, "")
    assert "nope: no such file or directory" in err
    config = tmp_path / "config.yaml"
    config.write_text("proxies: [{listeners: [{bindPort: 99999}]}]\n")
    code, out, err = run("render", "-f", str(EXAMPLES), "--config", str(config))
    assert (code, out) == (2, "")
    assert "config.yaml: proxies[0].listeners[0].bindPort: Input should be less than or equal to 65535" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "strategy: {domainTemplates: ['{nme}']}",
            "strategy.domainTemplates[0]: '{nme}': unknown field '{nme}'; known: {name}, {namespace}",
        ),
        (
            "proxies: [{listeners: [{strategies: [{kind: canary}]}]}]",
            "proxies[0].listeners[0].strategies[0].kind: unknown strategy 'canary';"
            " known: host-header, https-redirect, path-prefix",
        ),
        (
            "proxies: [{listeners: [{sslConfigurations: [{secretRef: {name: [tls]}}]}]}]",
            "proxies[0].listeners[0].sslConfigurations[0].secretRef.name: Input should be a valid string",
        ),
    ],
)
def test_a_bad_strategy_or_listener_setting_exits_2_naming_the_key(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(content + "\n")
    code, out, err = run("render", "-f", str(EXAMPLES), "--config", str(config))
    assert (code, out) == (2, "")
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_several_proxies_are_printed_as_a_yaml_stream_or_a_json_list(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "proxies:\n"
        "  - {name: by-host}\n"
        "  - {name: by-path, listeners: [{name: paths, strategies: [{kind: path-prefix}]}]}\n"
    )
    code, out, err = run("render", "-f", str(EXAMPLES), "--config", str(config))
    assert code == 0, err
    documents = [d for d in yaml.safe_load_all(out) if d]
    assert [d["metadata"]["name"] for d in documents] == ["by-host", "by-path"]
    code, out, err = run("render", "-f", str(EXAMPLES), "--config", str(config), "-o", "json")
    assert code == 0, err
    listed = json.loads(out)
    assert listed["kind"] == "List"
    assert listed["items"] == documents


def test_duplicate_upstream_in_two_files_warns_and_keeps_the_first(tmp_path: Path) -> None:
    source = EXAMPLES / "gloo-system" / "default-petstore-8080.yaml"
    (tmp_path / "copy.yaml").write_text(source.read_text())
    code, out, err = run("render", "-f", str(source), "-f", str(tmp_path / "copy.yaml"))
    assert code == 0
    assert "Upstream gloo-system/default-petstore-8080 is also defined in" in err
    assert out.count("name: default-petstore-8080") == 2  # vhost name + upstream ref, once


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "proxycontroller"
    result = subprocess.run([str(script), "render", "-f", str(EXAMPLES)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "my-cool-proxy" in result.stdout


def test_the_configurations_advisories_are_warnings_on_stderr(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("proxies: [{namespace: default}]\n")
    code, out, err = run("render", "-f", str(EXAMPLES), "--config", str(config))
    assert code == 0, err
    assert "namespace: default" in out
    assert err.splitlines()[0] == (
        "warning: Proxy default/my-cool-proxy is in namespace default, but Gloo (glooNamespace gloo-system) reads"
        " Proxies only from its write namespace"
    )
