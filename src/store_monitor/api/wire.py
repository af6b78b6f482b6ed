"""What the wire schemas share: a response's config (every field always sent, the examples its
documentation shows), the next page's cursor, and the values the examples are made of."""

from typing import Annotated, Final

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

EXAMPLE_REPORT_ID: Final = "0b5e6f3c-8d51-4c2e-9a7b-3f1d2e4c5a6b"
"""The report id the OpenAPI examples show."""
EXAMPLE_NOW: Final = "2023-01-25T18:13:22.479220Z"
EXAMPLE_FIGURES: Final[JsonDict] = {
    "uptime_last_hour": 60.0,
    "uptime_last_day": 20.5,
    "uptime_last_week": 130.25,
    "downtime_last_hour": 0.0,
    "downtime_last_day": 1.5,
    "downtime_last_week": 9.75,
    "incidents_last_day": 1,
    "incidents_last_week": 4,
}
"""A store's figures, in every example that has them."""


def response_config(*examples: JsonDict) -> ConfigDict:
    """The config of a response schema. Its fields are always sent, defaults too, so the schema
    says they are required and generated clients need not check for them. It can be read from a
    use case's result by attribute (`model_validate`): one field list, not a copy in code."""
    config = ConfigDict(json_schema_serialization_defaults_required=True, from_attributes=True)
    if examples:
        config["json_schema_extra"] = {"examples": list(examples)}
    return config


NextCursor = Annotated[
    str | None,
    Field(description="Pass as `cursor` for the next page; null on the last page."),
]
"""A paged list's cursor for its next page."""
