"""`proxycontroller manifests` (everything a cluster needs, from the configuration file) and `proxycontroller url`
(the address of a Proxy's Envoy), the counterparts of `linkerd install` and `glooctl proxy url`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from proxycontroller.cli.errors import BadInput, Failed, user_errors
from proxycontroller.cli.params import kubeconfig_options, seconds_option
from proxycontroller.config import ControllerConfig, describe_validation_error, load_config
from proxycontroller.model.deployment import DeploymentSettings

# Written into the controller's ConfigMap when no --config is given: the defaults, the seed's Proxy.
DEFAULT_CONFIG_TEXT = "# proxycontroller configuration: every key at its default (see examples/config.yaml)\n"

# Command-line overrides of the `deployment` section: option -> its key there.
OVERRIDES = {
    "--image": ("image",),
    "--gloo-version": ("envoy", "glooVersion"),
    "--service-type": ("envoy", "serviceType"),
    "--xds-address": ("envoy", "xdsAddress"),
}


def _with_overrides(config: ControllerConfig, given: dict[str, str | None]) -> ControllerConfig:
    """`config` with the options given replacing their `deployment` keys; BadInput naming the option."""
    for option, value in given.items():
        if value is None:
            continue
        data = config.deployment.model_dump(by_alias=True, exclude_unset=True)
        *parents, key = OVERRIDES[option]
        section = data
        for parent in parents:
            section = section.setdefault(parent, {})
        section[key] = value
        try:
            deployment = DeploymentSettings.model_validate(data)
        except ValidationError as exc:
            raise BadInput(f"{option}: {describe_validation_error(exc, lambda loc: '')}") from exc
        config = config.model_copy(update={"deployment": deployment})
    return config


def _config_text(path: Path | None) -> str:
    if path is None:
        return DEFAULT_CONFIG_TEXT
    try:
        return path.read_text(encoding="utf-8")  # load_config read it already: it is UTF-8 and within the limits
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from exc


@click.command("manifests")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Controller configuration (YAML): what is routed, and in `deployment` how it is installed.",
)
@click.option("--image", help="The controller's image. Overrides deployment.image.")
@click.option("--gloo-version", help="Tag of Gloo's Envoy image (gloo-envoy-wrapper). Overrides deployment.envoy.")
@click.option(
    "--service-type",
    type=click.Choice(["LoadBalancer", "NodePort", "ClusterIP"]),
    help="Type of each Envoy's Service. Overrides deployment.envoy.serviceType.",
)
@click.option("--xds-address", help="Host name of Gloo's xDS Service. Overrides deployment.envoy.xdsAddress.")
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def manifests_command(
    config_path: Path | None,
    image: str | None,
    gloo_version: str | None,
    service_type: str | None,
    xds_address: str | None,
    output: str,
) -> None:
    """Print everything a cluster needs (ServiceAccount, RBAC, the controller's Deployment, and each Proxy's
    Envoy) for `kubectl apply -f -` or kustomize."""
    from proxycontroller.install.layout import ManifestError
    from proxycontroller.install.manifests import as_list, dump_manifests, render_manifests

    with user_errors(config_path):
        config = load_config(config_path)
        text = _config_text(config_path)
    given = {"--image": image, "--gloo-version": gloo_version, "--service-type": service_type}
    config = _with_overrides(config, {**given, "--xds-address": xds_address})
    try:
        objects = render_manifests(config, text)
    except ManifestError as exc:
        raise BadInput(f"{config_path}: {exc}" if config_path else str(exc)) from exc
    for advisory in config.advisories():
        click.echo(f"warning: {advisory}", err=True)
    if output == "json":
        click.echo(json.dumps(as_list(objects), indent=2))
    else:
        click.echo(dump_manifests(objects), nl=False)


@click.command("url")
@click.option("--proxy", "proxy_name", required=True, help="The Proxy whose Envoy to find (its Service's name).")
@click.option(
    "-n",
    "--namespace",
    help="The Envoy Service's namespace; default: where `manifests --config` puts it with --config, else gloo-system.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The configuration `manifests` rendered from: finds the namespace of the Proxy's Envoy.",
)
@click.option("--port", type=click.IntRange(1, 65535), help="A Service port (default: its first, the first listener).")
@kubeconfig_options
@seconds_option("--timeout", default=10.0, help="Seconds to wait for the API server.")
def url_command(
    proxy_name: str,
    namespace: str | None,
    config_path: Path | None,
    port: int | None,
    kubeconfig: Path | None,
    context: str | None,
    timeout: float,
) -> None:
    """Print the http(s):// address of a Proxy's Envoy Service (load balancer, else node port, else cluster IP)."""
    from proxycontroller.cli.cluster_reads import ClusterReader
    from proxycontroller.install.address import AddressError, PortNotFound, envoy_address

    if namespace is None:
        namespace = _envoy_namespace(config_path, proxy_name) if config_path is not None else "gloo-system"
    with user_errors(), ClusterReader(kubeconfig, context, timeout) as reader:
        service = reader.service(namespace, proxy_name)
        nodes: list[dict[str, Any]] = []
        if _needs_nodes(service, port):
            nodes = reader.nodes()
        try:
            address = envoy_address(service, nodes, port)
        except PortNotFound as exc:
            raise BadInput(str(exc)) from exc
        except AddressError as exc:
            raise Failed(str(exc)) from exc
    if address.note is not None:
        click.echo(f"note: {address.note}", err=True)
    click.echo(address.url)


def _envoy_namespace(config_path: Path, proxy_name: str) -> str:
    """Where `manifests --config` puts the Envoy of the Proxy (or shard) named `proxy_name`."""
    from proxycontroller.install.layout import Layout, ManifestError

    with user_errors(config_path):
        config = load_config(config_path)
    try:
        envoys = Layout(config).envoys()
    except ManifestError as exc:
        raise BadInput(f"{config_path}: {exc}") from exc
    for envoy in envoys:
        if envoy.name == proxy_name:
            return envoy.namespace
    known = ", ".join(envoy.name for envoy in envoys)
    raise BadInput(f"{config_path}: no managed Proxy {proxy_name!r} (its Proxies: {known})")


def _needs_nodes(service: dict[str, Any], port: int | None) -> bool:
    """Nodes are read only when the address is a node's: no load balancer ingress, and a node port."""
    if ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
        return False
    ports = (service.get("spec") or {}).get("ports") or []
    return any(p.get("nodePort") and (port is None or p.get("port") == port) for p in ports)
