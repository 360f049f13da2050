"""Which strategies exist: the built-in ones, those packages register under the `proxycontroller.strategies`
entry point group, and `module:function` plugins named in a configuration. Looked up once, when the
configuration loads; options are validated there too, so a mistake is an error naming its key at start.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ValidationError

from proxycontroller.config import StrategySettings, describe_validation_error, shown
from proxycontroller.translate.api import Strategy
from proxycontroller.translate.builtin import BUILTIN_STRATEGIES

ENTRY_POINT_GROUP = "proxycontroller.strategies"
PLUGIN = "plugin"


class StrategyError(ValueError):
    """A strategy setting that names no usable strategy, or options it refuses; names the key."""


@dataclass(frozen=True)
class ResolvedStrategy:
    """A strategy with its validated options, and where in the configuration it was set."""

    strategy: Strategy[Any]
    options: BaseModel
    where: str

    def describe(self) -> str:
        return f"{self.strategy.describe()} at {self.where}"


class StrategyRegistry:
    """Strategies by name. Built per controller (no process-wide registry): from the built-ins and the
    entry points installed, or from exactly the strategies given (tests)."""

    def __init__(self, strategies: Mapping[str, Strategy[Any]]) -> None:
        self._strategies = dict(strategies)

    @classmethod
    def discover(cls) -> StrategyRegistry:
        found: dict[str, Strategy[Any]] = {s.name: s for s in BUILTIN_STRATEGIES}
        for point in entry_points(group=ENTRY_POINT_GROUP):
            if point.name in found:
                continue  # the built-ins are registered as entry points too; one is enough
            try:
                loaded = point.load()
            except Exception as exc:  # a broken third-party package must not stop the controller
                raise StrategyError(f"entry point {point.name} = {point.value}: cannot load: {_one_line(exc)}") from exc
            found[point.name] = _as_strategy(loaded, f"entry point {point.name} = {point.value}")
        return cls(found)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._strategies))

    def get(self, name: str) -> Strategy[Any]:
        """The strategy registered as `name` (KeyError if none)."""
        return self._strategies[name]

    def resolve(self, settings: StrategySettings, where: str) -> ResolvedStrategy:
        """The strategy `settings` name, with its options validated; `where`: its key in the long form
        (errors name the key as written, which differs in the short form)."""
        where = settings.key(where)
        if settings.kind == PLUGIN:
            found = _import_plugin(settings.plugin, settings.key(where, "plugin"))
        else:
            if settings.plugin is not None:
                raise StrategyError(
                    f"{settings.key(where, 'plugin')}: only for kind 'plugin' (kind is {settings.kind!r})"
                )
            known = self._strategies.get(settings.kind)
            if known is None:
                raise StrategyError(
                    f"{settings.key(where, 'kind')}: unknown strategy {shown(settings.kind)}; known: "
                    f"{', '.join(self.names)}, plugin"
                )
            found = known
        try:
            options = found.options.model_validate(settings.options)
        except ValidationError as exc:
            raise StrategyError(
                describe_validation_error(exc, lambda loc: settings.key(where, "options", *loc))
            ) from exc
        return ResolvedStrategy(found, options, where)


def _import_plugin(reference: str | None, key: str) -> Strategy[Any]:
    if not reference or ":" not in reference:
        raise StrategyError(f"{key}: must be 'module:function', got {shown(reference) if reference else 'nothing'}")
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # whatever importing user code raises, it is a configuration problem
        raise StrategyError(f"{key}: cannot import {shown(module_name)}: {_one_line(exc)}") from exc
    found = getattr(module, attribute, None)
    if found is None:
        raise StrategyError(f"{key}: {module_name} has no {shown(attribute)}")
    return _as_strategy(found, f"{key} {shown(reference)}")


def _one_line(exc: BaseException) -> str:
    """An exception from user code for a one-line message (a SyntaxError's text spans lines)."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _as_strategy(found: object, what: str) -> Strategy[Any]:
    if isinstance(found, Strategy):
        return found
    raise StrategyError(f"{what}: not a strategy (decorate it with @proxycontroller.strategy)")
