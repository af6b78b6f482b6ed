"""Stores as integer codes: the engine sorts and joins on them, never on their ids' texts."""

import polars as pl


def store_codes(store_id: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Each poll's store as a code, and the store id of each code (null: a code no poll has).

    A `store_id` of dtype Enum is coded already (a database read's); text is coded in one
    hashing pass, by a private Categories (a mapping of its own, dropped with the column)."""
    if isinstance(store_id.dtype, pl.Enum):
        physical = store_id.to_physical()
        categories = store_id.dtype.categories
        present = pl.zeros(categories.len(), pl.Boolean, eager=True).scatter(physical, True)
        return physical, pl.select(pl.when(present).then(categories)).to_series()
    stores = pl.Categories.random()
    # The mapping keeps its ids only while a column of it lives: read them with it alive.
    categorical = store_id.cast(pl.Categorical(stores))
    return categorical.to_physical(), stores.to_series()


def store_code(store_ids: pl.Series) -> pl.Expr:
    """A `store_id` column as its position in `store_ids` (all of its values are there)."""
    return pl.col("store_id").cast(pl.Enum(store_ids)).to_physical().cast(pl.UInt32).alias("code")
