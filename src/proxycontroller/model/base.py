"""The base every Gloo model derives from: Gloo's camelCase JSON names, unknown fields kept."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class GlooModel(BaseModel):
    """A message of Gloo's API.

    `extra="allow"` keeps every field the model does not name (a newer Gloo's, an enterprise plugin's), so
    reading and writing back never drops data. Dumps carry only the fields that were set, so a round trip
    reproduces the input rather than padding it with defaults.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        frozen=False,
        ser_json_inf_nan="strings",
    )

    def to_json_dict(self) -> dict[str, Any]:
        """The object as Gloo's JSON: camelCase names, only the fields that are set."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)
