"""Reading `GET /metrics` back in tests: the exposition's samples by name and labels."""

from collections.abc import Iterator

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


class Samples:
    def __init__(self, text: str) -> None:
        self.all: list[Sample] = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def __call__(self, name: str, **labels: str) -> float | None:
        """The value of the sample with exactly these labels, None if there is none."""
        for sample in self.all:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
        return None

    def named(self, name: str) -> Iterator[Sample]:
        return (sample for sample in self.all if sample.name == name)


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return Samples(response.text)
