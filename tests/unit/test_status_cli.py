"""`proxycontroller status` on Gloo's directory layout (a real directory, the real directory store)."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from proxycontroller.cli.main import main
from proxycontroller.model.encoding import from_cr, to_flat
from proxycontroller.model.resources import Proxy
from proxycontroller.testing import render
from tests.unit.factories import kube_upstream


def gloo_tree(config_dir: Path) -> Path:
    """An empty directory config tree, as Gloo's setup makes it (a folder per kind)."""
    for plural in ("upstreams", "proxies"):
        (config_dir / plural).mkdir(parents=True, exist_ok=True)
    return config_dir


def write_proxy(config_dir: Path, status: dict[str, object] | None) -> None:
    """The Proxy the controller writes for two upstreams, in Gloo's directory (flat) form."""
    gloo_tree(config_dir)
    document = to_flat(from_cr(Proxy, render([kube_upstream("a"), kube_upstream("b")]).proxy()))
    if status is not None:
        document["namespacedStatuses"] = {"statuses": {"gloo-system": status}}
    path = config_dir / "proxies" / "gloo-system" / "my-cool-proxy.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(document))


def test_status_lists_the_managed_proxy_with_glooss_verdict(tmp_path: Path) -> None:
    write_proxy(tmp_path, {"state": 2, "reason": "domain conflict", "reportedBy": "gloo"})
    foreign = tmp_path / "proxies" / "gloo-system" / "gateway-proxy.yaml"
    foreign.write_text(yaml.safe_dump({"metadata": {"name": "gateway-proxy", "namespace": "gloo-system"}}))
    result = CliRunner().invoke(main, ["status", "--config-dir", str(tmp_path), "--timeout", "10"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["PROXY", "VIRTUAL", "HOSTS", "SPEC", "BYTES", "COMPRESSED", "GLOO", "REASON"]
    (row,) = lines[1:]
    assert row.split()[:2] == ["gloo-system/my-cool-proxy", "2"]
    assert "Rejected" in row
    assert "domain conflict" in row
    assert "gateway-proxy" not in result.stdout


def test_status_says_when_there_is_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["status", "--config-dir", str(gloo_tree(tmp_path)), "--timeout", "10"])
    assert result.exit_code == 0, result.output
    assert "no Proxy managed by instance 'proxycontroller' in namespace gloo-system" in result.stdout
