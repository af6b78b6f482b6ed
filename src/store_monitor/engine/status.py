"""Each store's status as a step function of time, built from its polls."""

import polars as pl

from store_monitor.engine.order import KINDS, key_code, key_kind, key_time, sort_key

# Kinds of event in the sort key (see `order`): a step to this status. Inactive sorts after
# active at one instant, which is how polls at one instant come out inactive if any is.
ACTIVE = 0
INACTIVE = 1


def status_steps(polls: pl.DataFrame, *, start_us: int, end_us: int) -> pl.Series:
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
    oldest = polls["at_us"].min()
    if isinstance(oldest, int) and oldest < horizon:
        last_old = (
            polls.filter(is_old)
            .group_by("code")
            .agg(pl.col("inactive").sort_by("at_us", "inactive").last())
            .select("code", at_us=pl.lit(origin_us), inactive="inactive")
        )
        polls = pl.concat([last_old, polls.filter(~is_old)])
    keys = polls.select(
        sort_key(
            pl.col("code"),
            pl.col("at_us"),
            pl.when("inactive").then(INACTIVE).otherwise(ACTIVE),
            origin_us=origin_us,
        )
    ).to_series()
    # A single-threaded sort: on two cores Polars' parallel sort of one column took twice as long.
    keys = keys.sort(multithreaded=False)
    # The kind sorts an instant's inactive poll last: keep the last poll of each instant.
    instant = keys // KINDS
    repeated = instant == instant.shift(-1)
    if repeated.any():
        keys = keys.filter(~repeated.fill_null(False))

    code = pl.col("code")
    at_us = pl.col("at_us")
    kind = pl.col("kind")
    # A poll's status holds from the midpoint with the previous poll, so the step function only
    # changes at the midpoints before a store's first poll and before each poll whose status
    # differs from the previous one: a few polls out of many. Keep just those.
    runs = (
        keys.to_frame()
        .select(
            code=key_code(pl.col("key")),
            at_us=key_time(pl.col("key"), origin_us=origin_us),
            kind=key_kind(pl.col("key")),
        )
        .select(
            "code",
            "kind",
            changed_at=(at_us.shift(1) + at_us) // 2,
            run_start=code.ne_missing(code.shift(1)) | kind.ne_missing(kind.shift(1)),
        )
        .filter("run_start")
    )
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
