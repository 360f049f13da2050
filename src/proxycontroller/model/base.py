"""The base every Gloo model derives from: Gloo's camelCase JSON names, unknown fields kept, immutable."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class GlooModel(BaseModel):
    """A message of Gloo's API.

    `extra="allow"` keeps every field the model does not name (a newer Gloo's, an enterprise plugin's), so
    reading and writing back never drops data. Dumps carry only the fields that were set, so a round trip
    reproduces the input rather than padding it with defaults.

    Frozen, with tuples for repeated fields: the engine shares one model between passes (its memo of virtual
    hosts) and hands it to users' strategies, so nobody may change one in place. Opaque `dict` fields are not
    frozen by Python; the engine keeps the serialized bytes of a model from when it was made, so a change to
    one of those later does not reach what is written either.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        frozen=True,
        ser_json_inf_nan="strings",
    )

    def to_json_dict(self) -> dict[str, Any]:
        """The object as Gloo's JSON: camelCase names, only the fields that are set.

        Through JSON text on purpose: pydantic-core writes JSON several times faster than it builds Python
        objects for nested models with `exclude_unset` (measured 85 ms against 450 ms for 10k virtual hosts).
        """
        result: dict[str, Any] = json.loads(self.to_json_bytes())
        return result

    def to_json_bytes(self) -> bytes:
        """The same as compact JSON, in field order, serialized in one pass by pydantic-core."""
        return self.model_dump_json(by_alias=True, exclude_unset=True, exclude_none=True).encode()
