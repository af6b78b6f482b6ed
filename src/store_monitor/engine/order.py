"""Fast ordering of per-store time series: one Int64 key that sorts as (store, time, flag).

key = store code · 2^42 + microseconds since an origin · 2 + a Boolean flag. Sorting one integer
column is several times faster than a multi-column sort, and the key decodes back into its parts,
so no other column needs to travel through the sort. 41 bits of time cover 25 days, enough for
the two weeks the engine ever looks at; 21 bits of store code keep the key non-negative, so
stores are processed in batches of at most MAX_STORES.
"""

import polars as pl

_TIME_BITS = 41
_STORE_FACTOR = 1 << (_TIME_BITS + 1)
MAX_STORES = 1 << (63 - _TIME_BITS - 1)


def sort_key(*, origin_us: int) -> pl.Expr:
    """The key of columns `code` (< MAX_STORES), `at_us` (origin_us .. +2^41) and `flag`.

    A null `flag` orders like False.
    """
    return (
        pl.col("code").cast(pl.Int64) * _STORE_FACTOR
        + (pl.col("at_us") - origin_us) * 2
        + pl.col("flag").fill_null(False).cast(pl.Int64)
    ).alias("key")


def sorted_by_key(frame: pl.DataFrame, *, origin_us: int) -> pl.DataFrame:
    """`frame`'s `code`, `at_us` and `flag`, sorted by store, then time, then flag."""
    keys = frame.select(sort_key(origin_us=origin_us)).to_series().sort()
    return keys.to_frame().select(
        code=(pl.col("key") // _STORE_FACTOR).cast(pl.UInt32),
        at_us=(pl.col("key") % _STORE_FACTOR) // 2 + origin_us,
        flag=(pl.col("key") % 2) == 1,
    )
