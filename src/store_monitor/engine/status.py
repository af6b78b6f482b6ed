"""Each store's status as a step function of time, built from its polls."""

import polars as pl

from store_monitor.engine.order import sort_key, sorted_by_key


def status_changes(polls: pl.DataFrame, *, start_us: int, end_us: int) -> pl.DataFrame:
    """The step function on `[start_us, end_us)` as rows `(code, at_us, inactive, key)`.

    `polls` has columns `code` (store), `at_us` (epoch microseconds, none after `end_us`) and
    `inactive`. A poll's status holds from the midpoint with the previous poll to the midpoint
    with the next one; the first status holds before the first poll and the last after the last.
    Polls of one store at one instant count once, inactive if any is. Each row starts a step that
    lasts until the store's next row; every store gets a row at exactly `start_us`. Rows come
    sorted by `key` (`order.sort_key` with origin `start_us`, `inactive` as the flag).
    """
    # A poll before `horizon` has its midpoint with any later poll (all are <= end_us) before
    # start_us, so only the last such poll of each store can matter, and only by its status.
    # Moving it to just before the horizon keeps every time inside the sort key's range.
    horizon = start_us - (end_us - start_us)
    is_old = pl.col("at_us") < horizon
    last_old = (
        polls.filter(is_old)
        .group_by("code")
        .agg(pl.col("inactive").sort_by("at_us", "inactive").last())
        .select("code", at_us=pl.lit(horizon - 1), flag="inactive")
    )
    recent = polls.filter(~is_old).select("code", "at_us", flag="inactive")
    ordered = sorted_by_key(pl.concat([last_old, recent]), origin_us=horizon - 1)

    same_store_before = pl.col("code") == pl.col("code").shift(1)
    same_store_after = pl.col("code") == pl.col("code").shift(-1)
    # The flag sorts an instant's inactive poll last: keep the last poll of each instant.
    same_instant_after = same_store_after & (pl.col("at_us") == pl.col("at_us").shift(-1))
    midpoint_before = (pl.col("at_us").shift(1) + pl.col("at_us")) // 2
    midpoint_after = (pl.col("at_us") + pl.col("at_us").shift(-1)) // 2
    return (
        ordered.filter(~same_instant_after.fill_null(False))
        .select(
            "code",
            "flag",
            step_start=pl.when(same_store_before).then(midpoint_before).otherwise(start_us),
            step_end=pl.when(same_store_after).then(midpoint_after).otherwise(end_us),
        )
        .filter(
            (pl.col("step_end") > pl.col("step_start"))
            & (pl.col("step_end") > start_us)
            & (pl.col("step_start") < end_us)
        )
        .select("code", pl.col("step_start").clip(lower_bound=start_us).alias("at_us"), "flag")
        # Steps start at distinct, increasing times within a store, in poll order: still sorted.
        .with_columns(sort_key(origin_us=start_us))
        .rename({"flag": "inactive"})
    )
