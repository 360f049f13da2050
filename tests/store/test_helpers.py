"""The store's small shared helpers: backoff and label selection (the same for every backend, so tested once)."""

from __future__ import annotations

import random

import pytest

from proxycontroller.model.resources import ObjectKey
from proxycontroller.store.backoff import Backoff
from proxycontroller.store.selection import Selection, labels_match
from tests.store.support import upstream


def test_backoff_doubles_from_base_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 4.0, jitter=0.0)
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.failures == 6


def test_backoff_starts_over_after_a_reset() -> None:
    backoff = Backoff(0.5, 4.0, jitter=0.0)
    for _ in range(5):
        backoff.next()
    backoff.reset()
    assert backoff.failures == 0
    assert backoff.next() == 0.5


def test_backoff_jitter_spreads_delays_below_the_nominal_one() -> None:
    backoff = Backoff(1.0, 1.0, jitter=0.5, rng=random.Random(7))
    delays = [backoff.next() for _ in range(200)]
    assert all(0.5 <= d <= 1.0 for d in delays)
    assert max(delays) - min(delays) > 0.3  # not in lockstep


def test_backoff_survives_a_long_outage() -> None:
    backoff = Backoff(0.2, 30.0, jitter=0.0)
    backoff.failures = 5_000  # 0.2 * 2**5000 would overflow a float
    assert backoff.next() == 30.0


@pytest.mark.parametrize(
    ("base", "cap", "factor", "jitter"), [(0, 1, 2, 0), (2, 1, 2, 0), (1, 2, 0.5, 0), (1, 2, 2, 1)]
)
def test_backoff_refuses_meaningless_settings(base: float, cap: float, factor: float, jitter: float) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        Backoff(base, cap, factor=factor, jitter=jitter)


@pytest.mark.parametrize(
    ("labels", "selector", "matches"),
    [
        (None, None, True),
        (None, {}, True),
        ({"a": "1"}, None, True),
        ({"a": "1", "b": "2"}, {"a": "1"}, True),
        ({"a": "1"}, {"a": "1", "b": "2"}, False),
        ({"a": "2"}, {"a": "1"}, False),
        (None, {"a": "1"}, False),
        ({"a": ""}, {"a": ""}, True),
        ({}, {"a": ""}, False),  # as the API server: `a=` needs the label, empty
    ],
)
def test_labels_match_like_an_equality_selector(
    labels: dict[str, str] | None, selector: dict[str, str] | None, matches: bool
) -> None:
    assert labels_match(labels, selector) is matches


def test_a_selection_wants_its_namespaces_and_labels() -> None:
    selection = Selection.of(["a"], {"team": "x"})
    assert selection.wants(upstream(ObjectKey("a", "svc"), labels={"team": "x", "more": "y"}))
    assert not selection.wants(upstream(ObjectKey("b", "svc"), labels={"team": "x"}))
    assert not selection.wants(upstream(ObjectKey("a", "svc")))
    everywhere = Selection.of(None, None)
    assert everywhere.wants(upstream(ObjectKey("any", "svc")))
