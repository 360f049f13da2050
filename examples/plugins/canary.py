"""Weighted canary routing: each app gets one virtual host that sends a share of its requests to its canary.

Upstreams labelled `app: <app>` and `track: stable` or `track: canary` are paired by app. The virtual host
`<app>` (domain `<app><domainSuffix>`) sends `canaryWeight` percent of its requests to the canary and the rest
to the stable upstream. Upstreams without an `app` label are left to other strategies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pydantic import Field

from proxycontroller import Skip, StrategyOptions, Upstream, VirtualHost, route_to, split_route, strategy, virtual_host

TRACKS = ("stable", "canary")


class CanaryOptions(StrategyOptions):
    canary_weight: int = Field(default=10, ge=0, le=100)  # percent of an app's requests that go to its canary
    domain_suffix: str = ""  # e.g. ".example.com": app "web" is served for "web.example.com"


@strategy("canary", options=CanaryOptions, each=False)
def canary(upstreams: Sequence[Upstream], options: CanaryOptions) -> Iterator[VirtualHost | Skip]:
    apps: dict[str, dict[str, Upstream]] = {}
    for upstream in upstreams:  # sorted by namespace, then name: of two rivals, the first wins
        labels = upstream.metadata.labels or {}
        app, track = labels.get("app"), labels.get("track")
        if app is None:
            continue
        tracks = apps.setdefault(app, {})
        if track not in TRACKS:
            yield Skip(f"label track={track!r}, expected one of {', '.join(TRACKS)}", upstream)
        elif track in tracks:
            yield Skip(f"app {app!r} already has its {track} track: Upstream {tracks[track].key}", upstream)
        else:
            tracks[track] = upstream
    for app, tracks in sorted(apps.items()):
        stable, candidate = tracks.get("stable"), tracks.get("canary")
        if stable is None:
            if candidate is not None:
                yield Skip(f"app {app!r} has a canary but no stable track", candidate)
            continue
        if candidate is None:
            route = route_to(stable)
        else:
            route = split_route([(stable, 100 - options.canary_weight), (candidate, options.canary_weight)])
        yield virtual_host(app, [app + options.domain_suffix], [route])
