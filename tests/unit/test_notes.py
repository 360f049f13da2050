"""The logic's warnings say what they are about (`Note`): the Proxy they regard, the upstream they name, and a
reason, so the engine can log them with those fields and record them as Events on the Proxy without knowing
what an upstream is."""

from __future__ import annotations

from proxycontroller.model.desired import Note
from proxycontroller.model.resources import ObjectKey, Upstream
from proxycontroller.testing import render
from tests.unit.factories import kube_upstream

PROXY = ObjectKey("gloo-system", "my-cool-proxy")


def with_metadata(upstream: Upstream, **fields: dict[str, str]) -> Upstream:
    return upstream.model_copy(update={"metadata": upstream.metadata.model_copy(update=fields)})


def notes(warnings: tuple[str, ...]) -> list[tuple[str, dict[str, str], ObjectKey | None]]:
    assert all(isinstance(warning, Note) for warning in warnings), warnings
    return [(w.reason, dict(w.subjects), w.regarding) for w in warnings if isinstance(w, Note)]


def test_an_upstream_a_strategy_leaves_out_is_named() -> None:
    config = {"strategy": {"kind": "host-header", "domainTemplates": ["{label[team]}.example.com"]}}
    labelled = with_metadata(kube_upstream("web"), labels={"team": "a"})
    rendered = render([labelled, kube_upstream("unlabelled")], config)
    subjects = {"proxy": str(PROXY), "upstream": "gloo-system/unlabelled"}
    assert notes(rendered.warnings) == [("UpstreamSkipped", subjects, PROXY)]


def test_an_upstream_its_selection_leaves_out_is_named() -> None:
    odd = with_metadata(kube_upstream("odd"), annotations={"proxycontroller.io/expose": "yes"})
    rendered = render([odd, kube_upstream("fine")])
    subjects = {"proxy": str(PROXY), "upstream": "gloo-system/odd"}
    assert notes(rendered.warnings) == [("UpstreamSkipped", subjects, PROXY)]


def test_what_validation_leaves_out_regards_the_proxy() -> None:
    first, second = kube_upstream("web", namespace="a"), kube_upstream("web", namespace="b")
    rendered = render([first, second], {"namespaces": ["*"]})
    assert notes(rendered.warnings) == [("VirtualHostLeftOut", {"proxy": str(PROXY)}, PROXY)]
    assert "left out virtual host 'web' (from Upstream b/web)" in rendered.warnings[0]
