"""Live rules (the contract's "Live: down now, and incidents as they happen"): which stores are
down at `now` and which incidents to announce, from the report's own incidents and each store's
announced state. Frames in, frames out; no I/O, no clock.

Wiring: after ingests, call `evaluate_live` at `now` = N, the latest poll of all stores, with the
evaluated stores' polls, business hours and zones as `compute_report` takes them, and their state
rows (schema `LIVE_STATE`; a store without a row is at its first evaluation). The polls of the
week before N plus each store's latest before it give the same result as all of them; fewer do
most of the time: those from each store's `poll_windows` start on, plus its latest before that
(pass the windows: the stores they were too short for come back `unsettled`, to be evaluated
again with the week's polls and `merged`). Then, in one transaction,
replace those stores' state rows by `LiveEvaluation.state`, write `opened` and `closed` as events
(instants and minutes formatted by `formats`, as the incidents CSV writes them) and keep
`down_now` as the live view. Any subset of stores may be evaluated at an N, as long as each
store's evaluations run one at a time, in order, with N never going back.

Rules, per store with latest poll L and state: threshold T, announced start S (or none).
- First evaluation: T = N - 1 h, so loading a history announces no incident that ended before.
- An incident is *ongoing* when it reaches N and N is in business hours: the store is down now,
  `since` its start (S if it is the announced one), whether or not it was announced opened.
- The announced incident is the store's first incident that ends after S and starts by
  max(T, N - 7 d) (the report clips an incident older than the week to start at N - 7 d). While
  ongoing, it stays announced, however long it lasts. Once it has ended at or before L, it is
  announced closed with `started_at` S (the minutes of an incident longer than the week count from
  S, not from the clip), even if it ended at or before T (a store whose polls lag behind N can be
  opened at its first evaluation and then end before N - 1 h). While it ends after L (at a closing
  after the store's latest poll) it stays announced: a poll before that closing could still end it
  earlier. If no incident matches (late polls or new business hours erased it), it is announced
  closed at once, ending at S (0 minutes), so that every incident announced opened is announced
  closed once.
- Any other incident that is not ongoing and ends within (T, L] is announced closed as the
  report's incidents CSV writes it (one that began before N - 7 d with the clipped start).
- With no incident announced (any more), an ongoing incident is announced opened once L >= its
  start (no later poll can move the start then); one already longer than the week is announced
  with the clipped start N - 7 d, and keeps it.
- Then T := max(T, L): nothing ending at or before L is announced again, whatever late polls do.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import polars as pl

from store_monitor.engine.business_hours import business_intervals, store_timezones
from store_monitor.engine.report import compute_report, minutes_between
from store_monitor.frames import DOWN_NOW, INCIDENTS, INCIDENTS_OPENED, LIVE_STATE, PollWindows

NEW_STORE_LOOKBACK: Final = timedelta(hours=1)
"""At its first evaluation, a store announces closed only incidents that ended this close to N."""
WINDOW_MARGIN: Final = timedelta(hours=1)
"""How much earlier than a store's threshold (or announced start) its poll window starts: an
incident going on then is then usually read whole rather than found `unsettled`."""
_WEEK: Final = timedelta(weeks=1)


def poll_windows(state: pl.DataFrame, *, now: datetime) -> PollWindows:
    """Each store's window for an evaluation at `now`: `WINDOW_MARGIN` before the earlier of its
    threshold and announced start, never before the week that reports look at.

    Why its polls from there on (plus its latest before) are enough: the rules look only at
    incidents that end after the store's threshold T, after its announced start S, or at N, and
    the window starts before all three (or at the week's start: the report's own polls). With the
    latest poll before the window, the status is exact from before its start on, so every
    incident that starts in the window is exact; one running across its start is the only one
    that may be wrong (its start), and its store is `unsettled`."""
    week_start = now - _WEEK
    since = (pl.min_horizontal("threshold", "announced_started_at") - pl.lit(WINDOW_MARGIN)).clip(
        lower_bound=pl.lit(week_start)
    )
    return PollWindows(
        since=state.select("store_id", since=since),
        default=max(now - NEW_STORE_LOOKBACK - WINDOW_MARGIN, week_start),
    )


@dataclass(frozen=True, kw_only=True)
class LiveEvaluation:
    now: datetime
    down_now: pl.DataFrame
    """Schema `DOWN_NOW`: the stores with an ongoing incident, longest first, then by store_id.
    `minutes` = `now` - `since`, rounded like the incidents' minutes."""
    opened: pl.DataFrame
    """Schema `INCIDENTS_OPENED`: `incident.opened` events, sorted by store_id."""
    closed: pl.DataFrame
    """Schema `INCIDENTS`: `incident.closed` events, sorted by store_id then started_at."""
    state: pl.DataFrame
    """Schema `LIVE_STATE`: the new state of every evaluated store, sorted by store_id."""
    unsettled: pl.Series = field(default_factory=lambda: pl.Series("store_id", [], pl.String()))
    """The stores whose poll window was too short (see `PollWindows`): in no other frame."""

    def merged(self, rest: "LiveEvaluation") -> "LiveEvaluation":
        """This evaluation with `rest`, that of (some of) its unsettled stores at the same `now`
        with the week's polls: every frame of both, sorted as documented."""
        assert rest.now == self.now

        def both(name: str, *by: str) -> pl.DataFrame:
            frame: pl.DataFrame = pl.concat([getattr(self, name), getattr(rest, name)])
            return frame.sort(*by)

        return LiveEvaluation(
            now=self.now,
            down_now=both("down_now", "since", "store_id"),
            opened=both("opened", "store_id"),
            closed=both("closed", "store_id", "started_at"),
            state=both("state", "store_id"),
            unsettled=pl.concat(
                [
                    self.unsettled.filter(~self.unsettled.is_in(rest.state["store_id"].implode())),
                    rest.unsettled,
                ]
            ),
        )


def evaluate_live(
    polls: pl.DataFrame,
    business_hours: pl.DataFrame,
    timezones: pl.DataFrame,
    state: pl.DataFrame,
    *,
    now: datetime,
    windows: PollWindows | None = None,
) -> LiveEvaluation:
    """Evaluate every store with a poll at or before `now` in one vectorised pass (see the module
    docstring for the rules). Polls after `now` are ignored; `state` rows of other stores too.
    With `windows`, the polls are those of each store's window (plus its latest before): the
    stores it was too short for are `unsettled`, and left out."""
    report = compute_report(polls, business_hours, timezones, as_of=now)
    assert report.incidents is not None
    stores = _stores(polls, business_hours, timezones, state, now=now)
    unsettled = pl.Series("store_id", [], pl.String())
    if windows is not None:
        unsettled = _unsettled(report.incidents, windows)
        stores = stores.filter(~pl.col("store_id").is_in(unsettled.implode()))
    threshold, latest = pl.col("threshold"), pl.col("latest_poll_at")
    announced = pl.col("announced_started_at")
    started_at, ended_at = pl.col("started_at"), pl.col("ended_at")

    matchable = (
        announced.is_not_null()
        & (ended_at > announced)
        & (started_at <= pl.max_horizontal(threshold, pl.lit(now - _WEEK)))
    )
    incidents = (
        report.incidents.lazy()
        .join(stores.lazy(), on="store_id", how="inner", maintain_order="left")
        .with_columns(
            ongoing=(ended_at == pl.lit(now)) & pl.col("open_at_now"),
            # The first matchable incident of each store (incidents are sorted by start).
            matched=matchable & (matchable.cum_sum().over("store_id") == 1),
        )
        .collect()
        .lazy()
    )
    ongoing, matched = pl.col("ongoing"), pl.col("matched")
    outcomes = incidents.group_by("store_id").agg(
        matched_ongoing=(matched & ongoing).any(),
        matched_waits=(matched & ~ongoing & (ended_at > latest)).any(),
        matched_ended_at=ended_at.filter(matched & ~ongoing & (ended_at <= latest)).first(),
        ongoing_started_at=started_at.filter(ongoing).first(),
    )
    keeps_announced = pl.col("matched_ongoing") | pl.col("matched_waits")
    ongoing_start = pl.col("ongoing_started_at")
    opens = ~keeps_announced & ongoing_start.is_not_null() & (ongoing_start <= latest)
    decided = (
        stores.lazy()
        .join(outcomes, on="store_id", how="left")
        .with_columns(
            keeps_announced.fill_null(False).alias("keeps_announced"), opens=opens.fill_null(False)
        )
        .with_columns(
            closes_announced=announced.is_not_null() & ~pl.col("keeps_announced"),
            since=pl.when(pl.col("matched_ongoing")).then(announced).otherwise(ongoing_start),
        )
        .sort("store_id")
        .collect()
    )

    closed_announced = (
        decided.lazy()
        .filter("closes_announced")
        .select(
            "store_id",
            started_at=announced,
            # No matching incident (late polls or new business hours erased it): it closes where
            # it began, so that every incident announced opened is announced closed once.
            ended_at=pl.coalesce("matched_ended_at", announced),
        )
    )
    closed_others = incidents.filter(
        ~matched & ~ongoing & (ended_at > threshold) & (ended_at <= latest)
    ).select("store_id", "started_at", "ended_at")
    closed = (
        pl.concat([closed_announced, closed_others])
        .with_columns(minutes=minutes_between(started_at, ended_at))
        .sort("store_id", "started_at")
        .select(INCIDENTS.names())
        .collect()
    )
    opened = (
        decided.filter("opens")
        .select("store_id", started_at="ongoing_started_at")
        .match_to_schema(INCIDENTS_OPENED)
    )
    down_now = (
        decided.filter(pl.col("since").is_not_null())
        .select(
            "store_id",
            "since",
            minutes=minutes_between(pl.col("since"), pl.lit(now)),
            latest_poll_at="latest_poll_at",
        )
        .sort("since", "store_id")
        .match_to_schema(DOWN_NOW)
    )
    new_state = decided.select(
        "store_id",
        threshold=pl.max_horizontal(threshold, latest),
        announced_started_at=pl.when("keeps_announced")
        .then(announced)
        .when("opens")
        .then(ongoing_start),
    ).match_to_schema(LIVE_STATE)
    return LiveEvaluation(
        now=now,
        down_now=down_now,
        opened=opened,
        closed=closed,
        state=new_state,
        unsettled=unsettled,
    )


def _unsettled(incidents: pl.DataFrame, windows: PollWindows) -> pl.Series:
    """The stores with an incident running across the start of their window: its start may be
    wrong (polls before the window are missing), so the store needs the week's polls."""
    since = pl.coalesce("since", pl.lit(windows.default))
    return (
        incidents.lazy()
        .join(windows.since.lazy(), on="store_id", how="left")
        .filter((pl.col("started_at") < since) & (pl.col("ended_at") > since))
        .select(pl.col("store_id").unique(maintain_order=True))
        .collect()
        .to_series()
    )


def _stores(
    polls: pl.DataFrame,
    business_hours: pl.DataFrame,
    timezones: pl.DataFrame,
    state: pl.DataFrame,
    *,
    now: datetime,
) -> pl.DataFrame:
    """Each store with a poll by `now`: `latest_poll_at`, its state (a new store's threshold is
    `now` - 1 h) and `open_at_now`, whether `now` is in its business hours."""
    latest = (
        polls.lazy()
        .filter(pl.col("timestamp_utc") <= now)
        .group_by("store_id")
        .agg(latest_poll_at=pl.col("timestamp_utc").max())
        .sort("store_id")
        .collect()
    )
    zones = store_timezones(latest["store_id"], timezones)
    instant = timedelta(microseconds=1)
    open_by_rows = business_intervals(business_hours, zones, start=now, end=now + instant)
    has_rows = pl.col("store_id").is_in(business_hours["store_id"].unique().implode())
    return (
        latest.lazy()
        .join(state.lazy().select(LIVE_STATE.names()), on="store_id", how="left")
        .with_columns(
            threshold=pl.coalesce("threshold", pl.lit(now - NEW_STORE_LOOKBACK)),
            # A store without hours rows is open all the time.
            open_at_now=pl.col("store_id").is_in(open_by_rows["store_id"].unique().implode())
            | ~has_rows,
        )
        .collect()
    )
