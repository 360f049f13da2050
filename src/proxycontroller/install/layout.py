"""Names and namespaces of everything the manifests hold, decided once from the configuration.

The RBAC must grant exactly what the controller does, so the namespaces here are the ones the controller's code
uses: the Upstreams of `watched_namespaces()` (all of them: a ClusterRole), the Proxies of `proxy_namespaces`,
and the leader-election Lease in the first Proxy namespace (manager/run.py). A test runs the controller under
the rendered RBAC, so a change on either side that breaks the other fails it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from proxycontroller.config import ControllerConfig, ListenerSettings
from proxycontroller.model.deployment import DeploymentSettings

APP = "proxycontroller"
PART_OF_LABEL = "app.kubernetes.io/part-of"
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
# The seed's label on its Envoy: the Service selects the pods of one Proxy by it.
ENVOY_SELECTOR_LABEL = "gloo"
CONFIG_HASH_ANNOTATION = "proxycontroller.io/config-sha256"

# A Service's name: a DNS-1035 label (begins with a letter), which also fits a label value (63 characters).
_DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


class ManifestError(ValueError):
    """The configuration cannot be installed as asked; the message names the key."""


def digest(text: str) -> str:
    """A content hash for a pod template annotation: a changed ConfigMap rolls the pods, an unchanged one not."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class EnvoyLayout:
    """Where the Envoy of one managed Proxy (a shard's, for a sharded one) goes, what it is called, and the
    ports its listeners bind."""

    proxy_name: str
    proxy_namespace: str
    namespace: str
    listeners: tuple[tuple[ListenerSettings, int], ...]

    @property
    def name(self) -> str:  # the Deployment and the Service, as in the seed
        return self.proxy_name

    @property
    def config_map(self) -> str:
        return f"{self.proxy_name}-envoy-config"

    @property
    def role(self) -> str:
        """Gloo's xDS snapshot key of the Proxy (its node.metadata.role)."""
        return f"{self.proxy_namespace}~{self.proxy_name}"

    @property
    def selector(self) -> dict[str, str]:
        return {ENVOY_SELECTOR_LABEL: self.proxy_name}


@dataclass(frozen=True)
class Layout:
    config: ControllerConfig

    @property
    def settings(self) -> DeploymentSettings:
        return self.config.deployment

    @property
    def name(self) -> str:
        """The controller's objects (ServiceAccount, Deployment, roles): one set per instance."""
        instance = self.config.instance
        return APP if instance == APP else f"{APP}-{instance}"

    @property
    def lease_namespace(self) -> str:
        return self.config.proxy_namespaces[0]  # as manager/run.py elects its leader

    @property
    def namespace(self) -> str:
        return self.settings.namespace or self.lease_namespace

    @property
    def selector(self) -> dict[str, str]:
        return {NAME_LABEL: APP, INSTANCE_LABEL: self.config.instance}

    def labels(self, component: str) -> dict[str, str]:
        return {**self.selector, COMPONENT_LABEL: component, PART_OF_LABEL: APP}

    @property
    def xds_address(self) -> str:
        return self.settings.envoy.xds_address or f"gloo.{self.config.gloo_namespace}.svc.cluster.local"

    def envoys(self) -> tuple[EnvoyLayout, ...]:
        """One per managed Proxy (per shard of a sharded one), in the configuration's order; ManifestError if one
        cannot be named or two would share objects."""
        found: dict[tuple[str, str], str] = {}
        envoys = []
        controller = (self.namespace, self.name)
        for index, proxy in enumerate(self.config.proxies):
            for shard, name in enumerate(proxy.shard_names):
                key = f"proxies[{index}].name"
                if len(name) > 63 or not _DNS_1035.fullmatch(name):
                    raise ManifestError(
                        f"{key}: {name!r} cannot name its Envoy's Service (a DNS-1035 label: at most 63 lowercase"
                        " letters, digits and '-', beginning with a letter)"
                    )
                listeners = tuple((listener, proxy.shard_port(listener, shard)) for listener in proxy.listeners)
                envoy = EnvoyLayout(name, proxy.namespace, self.settings.envoy.namespace or proxy.namespace, listeners)
                where = (envoy.namespace, envoy.name)
                if where == controller:
                    raise ManifestError(f"{key}: its Envoy would be named like the controller, {'/'.join(where)}")
                earlier = found.setdefault(where, key)
                if earlier != key:
                    raise ManifestError(
                        f"{key}: its Envoy and that of {earlier} would both be {'/'.join(where)}"
                        " (deployment.envoy.namespace puts every Envoy in one namespace)"
                    )
                envoys.append(envoy)
        return tuple(envoys)
