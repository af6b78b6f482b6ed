"""The data a page's bar chart is drawn from: what `static/store-chart.js` reads from the chart
element's `data-chart` attribute."""

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    """The legend's text."""
    colour: str
    """The dashboard's CSS colour variable the bars are drawn in: `up` or `down`."""
    values: list[float]
    """One value per label."""


def chart_data(labels: Sequence[str], *series: Series) -> str:
    """The JSON of one chart: its x labels, then its series of bars."""
    return json.dumps({"labels": list(labels), "series": [asdict(one) for one in series]})
