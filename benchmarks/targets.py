"""The performance targets, gathered from the groups that ran and printed last as one table, so
that one run shows every target beside its figure."""

from dataclasses import dataclass

from benchmarks.table import print_table


@dataclass(frozen=True)
class Target:
    measure: str
    value: str
    target: str
    met: bool


_recorded: list[Target] = []


def record(measure: str, value: str, target: str, *, met: bool) -> None:
    """Note a figure that has a target (the group prints it in its own table as well)."""
    _recorded.append(Target(measure, value, target, met))


def print_targets() -> None:
    if not _recorded:
        return
    print_table(
        "Targets, this run",
        ["measure", "value", "target", "met"],
        [[t.measure, t.value, t.target, "yes" if t.met else "NO"] for t in _recorded],
    )
