"""Each store's status as a step function of time, built from its polls."""

import polars as pl

from store_monitor.engine.order import KINDS, key_code, key_kind, key_run, key_time, sort_key

# Kinds of event in the sort key (see `order`): a step to this status. Inactive sorts after
# active at one instant, which is how polls at one instant come out inactive if any is.
ACTIVE = 0
INACTIVE = 1


def status_steps(polls: pl.LazyFrame, *, start_us: int, end_us: int) -> pl.Series:
    """The step function on `[start_us, end_us)` as sorted keys (`order.sort_key`, origin
    `start_us`) of kind ACTIVE or INACTIVE: the status at `start_us`, then each change after it.

    `polls` has columns `code` (store), `at_us` (epoch microseconds, none after `end_us`) and
    `inactive`. A poll's status holds from the midpoint with the previous poll to the midpoint
    with the next one; the first status holds before the first poll and the last after the last.
    Polls of one store at one instant count once, inactive if any is. Every store gets a step
    at exactly `start_us`; a status lasts until the store's next step.
    """
    # A poll before `horizon` has its midpoint with any later poll (all are <= end_us) before
    # start_us, so only the last such poll of each store can matter, and only by its status.
    # Moving it to just before the horizon keeps every time inside the sort key's range.
    horizon = start_us - (end_us - start_us)
    origin_us = horizon - 1
    is_old = pl.col("at_us") < horizon
    oldest = polls.select(pl.col("at_us").min()).collect().item()
    if isinstance(oldest, int) and oldest < horizon:
        last_old = (
            polls.filter(is_old)
            .group_by("code")
            .agg(pl.col("inactive").sort_by("at_us", "inactive").last())
            .select("code", at_us=pl.lit(origin_us, pl.Int64), inactive="inactive")
        )
        polls = pl.concat([last_old, polls.filter(~is_old)])
    keys = (
        polls.select(
            sort_key(
                pl.col("code"),
                pl.col("at_us"),
                pl.when("inactive").then(INACTIVE).otherwise(ACTIVE),
                origin_us=origin_us,
            )
        )
        .collect()
        .to_series()
    )
    # Single-threaded: sorting one column in parallel gains no time and costs twice the CPU.
    keys = keys.sort(multithreaded=False)
    runs = _runs(keys, origin_us=origin_us)
    if runs["repeated"].any():
        # The kind sorts an instant's inactive poll last: keep the last poll of each instant.
        instant = keys // KINDS
        runs = _runs(keys.filter(instant.ne_missing(instant.shift(-1))), origin_us=origin_us)

    code = pl.col("code")
    kind = pl.col("kind")
    same_store_before = code.eq_missing(code.shift(1))
    same_store_after = code.eq_missing(code.shift(-1))
    changed_at = pl.col("changed_at")
    # The run holding at start_us: the store's first (whose `changed_at` is meaningless), or one
    # starting by then, and the store's last or one whose successor starts after then.
    holds_at_start = (~same_store_before | (changed_at <= start_us)) & (
        ~same_store_after | (changed_at.shift(-1) > start_us)
    )
    # Midpoints are before the later poll, so before end_us.
    changes_after_start = same_store_before & (changed_at > start_us)
    return (
        runs.select(
            # Runs of a store are in time order, and so are these steps: still sorted.
            sort_key(
                code,
                pl.when(holds_at_start).then(start_us).otherwise(changed_at),
                kind,
                origin_us=start_us,
            ),
            step=holds_at_start | changes_after_start,
        )
        .filter("step")
        .to_series()
    )


def _runs(keys: pl.Series, *, origin_us: int) -> pl.DataFrame:
    """The first poll of each run of polls with one status in one store, from sorted keys: its
    `code`, `kind` and `changed_at`, the midpoint with the poll before it (meaningless for a
    store's first poll). `repeated` tells that poll and the one before are at one instant.

    A poll's status holds from the midpoint with the previous poll, so the step function only
    changes at the starts of runs: a few polls out of many. Only those are decoded.
    """
    key = pl.col("key")
    return (
        keys.to_frame()
        .with_columns(run=key_run(key))
        .select(
            key, before=key.shift(1), run_start=pl.col("run").ne_missing(pl.col("run").shift(1))
        )
        .filter("run_start")
        .select(
            code=key_code(key),
            kind=key_kind(key),
            changed_at=(
                key_time(pl.col("before"), origin_us=origin_us) + key_time(key, origin_us=origin_us)
            )
            // 2,
            # Polls of both statuses at one instant start a run at the second one (whatever
            # their number, inactive sorts last); repeated polls of one status are harmless.
            repeated=(pl.col("before") // KINDS) == (key // KINDS),
        )
    )
