"""The logic the engine runs: snapshot in, desired Proxies (as canonical JSON bytes) and warnings out.

Translate, then validate, then serialize by splicing: each virtual host is serialized once, when it is
first seen, and a Proxy's spec is the listener envelopes with those bytes joined in, so a pass after one
upstream changed serializes one virtual host, not the whole Proxy. The memos live in this object, one per
controller, never in module globals.
"""

from __future__ import annotations

from types import MappingProxyType

import msgspec

from proxycontroller.config import ControllerConfig
from proxycontroller.model.canonical import CanonicalSpec, canonical_json
from proxycontroller.model.desired import Desired, DesiredObject
from proxycontroller.model.proxy import Listener, VirtualHost
from proxycontroller.model.resources import StoredProxy, Upstream
from proxycontroller.model.snapshot import Snapshot
from proxycontroller.translate.plan import ListenerPlan, ProxyPlan, SourcedVirtualHost
from proxycontroller.translate.registry import StrategyRegistry
from proxycontroller.translate.translator import Translator
from proxycontroller.validate.rules import (
    Verdict,
    admit_listeners,
    admit_virtual_hosts,
    check_virtual_host,
    direct_response_limit,
    proxy_where,
)

_HOSTS_MARK = "\x00virtual-hosts\x00"  # stands for the joined virtual hosts in a listener's envelope
_HOSTS_MARK_JSON = msgspec.json.encode(_HOSTS_MARK)

# A virtual host, the canonical JSON of what is written of it, and what validation made of it on its own.
_Serialized = tuple[VirtualHost, bytes, Verdict]


class ProxyLogic:
    """Upstreams to Proxies. `desired` is a function of the snapshot (and the configuration) only."""

    input_kinds = (Upstream,)
    output_kinds = (StoredProxy,)

    def __init__(self, config: ControllerConfig, registry: StrategyRegistry | None = None) -> None:
        self.translator = Translator(config, registry or StrategyRegistry.discover())
        self._serialized: dict[int, _Serialized] = {}

    @property
    def progress(self) -> str:
        """What it is doing now (for the engine to name what ran past its time budget)."""
        return self.translator.progress

    def desired(self, snapshot: Snapshot) -> Desired:
        plans, warnings = self.translator.translate(snapshot)
        seen: dict[int, _Serialized] = {}
        objects = tuple(self._proxy(plan, warnings, seen) for plan in plans)
        self._serialized = seen  # forget the virtual hosts no longer made
        return Desired(objects, tuple(warnings))

    def _proxy(self, plan: ProxyPlan, warnings: list[str], seen: dict[int, _Serialized]) -> DesiredObject:
        where = proxy_where(plan)
        listeners = []
        parts = {}
        for listener_plan in admit_listeners(where, plan.listeners, warnings):
            candidates = [(host, self._serialize(host, seen)) for host in listener_plan.virtual_hosts]
            listener_where = f"{where} listener {listener_plan.listener.name!r}"
            admitted = admit_virtual_hosts(
                listener_where,
                [(h, s[2]) for h, s in candidates],
                warnings,
                direct_response_limit(listener_plan.listener),
            )
            listeners.append(_listener_json(listener_plan, [seen[id(h.virtual_host)][1] for h in admitted]))
            parts[listener_plan.listener.name] = tuple(host.virtual_host.name for host in admitted)
        spec = b'{"listeners":[' + b",".join(listeners) + b"]}"
        return DesiredObject(StoredProxy, plan.key, plan.labels, CanonicalSpec(json=spec), MappingProxyType(parts))

    def _serialize(self, host: SourcedVirtualHost, seen: dict[int, _Serialized]) -> _Serialized:
        """By identity: the memo keeps the model alive, so an id is never reused while it is remembered."""
        virtual_host = host.virtual_host
        known = seen.get(id(virtual_host)) or self._serialized.get(id(virtual_host))
        if known is None or known[0] is not virtual_host:
            # Checked as the JSON Gloo reads, then that JSON written: nothing for a virtual host left out.
            verdict = check_virtual_host(virtual_host)
            data = b"" if verdict.document is None else canonical_json(verdict.document)
            known = (virtual_host, data, verdict.kept())
        seen[id(virtual_host)] = known
        return known


def _listener_json(plan: ListenerPlan, hosts: list[bytes]) -> bytes:
    """The listener's canonical JSON with the virtual hosts' bytes spliced in where the mark stands."""
    envelope = msgspec.json.decode(_listener_envelope(plan.listener))
    envelope["httpListener"] = {"virtualHosts": _HOSTS_MARK}
    before, _, after = canonical_json(envelope).partition(_HOSTS_MARK_JSON)
    return before + b"[" + b",".join(hosts) + b"]" + after


def _listener_envelope(listener: Listener) -> bytes:
    return listener.model_copy(update={"http_listener": None}).to_json_bytes()
