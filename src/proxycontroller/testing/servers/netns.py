"""A test host in a Linux network namespace: real addresses for Service endpoints, reachable only from this machine.

The API server refuses loopback addresses in Endpoints and EndpointSlices, so a backend that a Service points at
needs an address of its own. `namespace_host()` makes one: a network namespace joined to this one by a veth pair, the
two ends numbered from 198.18.0.0/15 (reserved for benchmarking, never routed on the internet) as a /30, so the
only route it adds here is to that /30 over the veth. Processes started with `host.command(...)` run inside;
everything in the namespace is killed and the namespace, with both ends of the pair, is removed when the block
exits, also when it raises. Needs root (CAP_NET_ADMIN) and `ip` from iproute2.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

TEST_NET = ipaddress.IPv4Network("198.18.0.0/15")


class NetnsError(RuntimeError):
    """A network namespace could not be made (no root, no iproute2, or an `ip` command failed)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    ip = shutil.which("ip")
    if ip is None:
        raise NetnsError("`ip` (iproute2) is needed to make the test host's network namespace")
    result = subprocess.run([ip, *args], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip() or f'exit {result.returncode}'}")
    return result


def _used_networks() -> list[ipaddress.IPv4Network]:
    out = _ip("-4", "-o", "addr", "show").stdout
    networks = []
    for line in out.splitlines():
        fields = line.split()
        if "inet" in fields:
            networks.append(ipaddress.IPv4Interface(fields[fields.index("inet") + 1]).network)
    return networks


def _free_subnet() -> ipaddress.IPv4Network:
    """A /30 of 198.18.0.0/15 that no interface here uses (several test sessions may run at once)."""
    used = _used_networks()
    for _ in range(100):
        index = random.randrange(TEST_NET.num_addresses // 4)
        subnet = ipaddress.IPv4Network((int(TEST_NET.network_address) + 4 * index, 30))
        if not any(subnet.overlaps(network) for network in used):
            return subnet
    raise NetnsError("no free /30 in 198.18.0.0/15")


@dataclass(frozen=True)
class NamespaceHost:
    """A network namespace with one address (`address`), reached from here over a veth whose end here is `gateway`."""

    name: str
    address: str
    gateway: str
    host_interface: str

    def command(self, args: Sequence[str]) -> list[str]:
        """`args` as a command that runs inside the namespace."""
        ip = shutil.which("ip") or "ip"
        return [ip, "netns", "exec", self.name, *args]

    def pids(self) -> list[int]:
        out = _ip("netns", "pids", self.name, check=False).stdout
        return [int(pid) for pid in out.split() if pid.isdigit()]


def _kill_all(host: NamespaceHost) -> None:
    """SIGKILL whatever still runs in the namespace (a process outlives `ip netns del` otherwise)."""
    for _ in range(50):
        pids = host.pids()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _remove(host: NamespaceHost) -> None:
    _kill_all(host)
    _ip("netns", "del", host.name, check=False)
    # Deleting the namespace deletes its end of the pair and with it this end; make sure of it.
    if _ip("link", "show", host.host_interface, check=False).returncode == 0:
        _ip("link", "del", host.host_interface, check=False)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(prefix: str) -> None:
    """Remove namespaces a killed test session (SIGKILL: no `finally`) left: their creator's pid is in the name.
    Deleting a namespace deletes its end of the veth pair, and with it the end here."""
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        if len(parts) == 3 and parts[0] == prefix and parts[1].isdigit() and not _pid_alive(int(parts[1])):
            stale = NamespaceHost(name=name, address="", gateway="", host_interface=f"vh{parts[2]}")
            _remove(stale)


@contextlib.contextmanager
def namespace_host(prefix: str = "pctest") -> Iterator[NamespaceHost]:
    """Make the namespace and its veth pair, yield it, remove both (and kill what runs inside) on exit."""
    if os.geteuid() != 0:
        raise NetnsError("making a network namespace needs root (CAP_NET_ADMIN); run the Gateway API tests as root")
    _remove_stale(prefix)
    # Interface names are at most 15 characters: a random tag names the pair, the namespace also has our pid.
    tag = f"{random.randrange(16**8):08x}"
    subnet = _free_subnet()
    gateway, address = (str(a) for a in subnet.hosts())
    host = NamespaceHost(
        name=f"{prefix}-{os.getpid()}-{tag}", address=address, gateway=gateway, host_interface=f"vh{tag}"
    )
    inner = f"vn{tag}"
    try:
        _ip("netns", "add", host.name)
        _ip("link", "add", host.host_interface, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", host.name)
        _ip("addr", "add", f"{gateway}/30", "dev", host.host_interface)
        _ip("link", "set", host.host_interface, "up")
        for args in (
            ("addr", "add", f"{address}/30", "dev", inner),
            ("link", "set", inner, "up"),
            ("link", "set", "lo", "up"),
        ):
            _ip("-n", host.name, *args)
        yield host
    finally:
        _remove(host)
