"""A finished report's files in the database: encoded once from the rows frame, gzip-compressed,
in one row each; read back whole in one statement, or only their digest and sizes."""

import gzip
import hashlib
import uuid
from dataclasses import dataclass
from typing import Final

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import ReportFile
from store_monitor.formats import report_csv_bytes

REPORT_CSV: Final = "report"
"""The kind of the report's CSV, the bytes `store-monitor report` writes."""
# Level 6 (zlib's default) makes a 14,000-store CSV (736 KB) a third of its size (243 KB);
# level 9 saves 3 % more at about six times the time, level 1 gives 288 KB at half of it.
_GZIP_LEVEL: Final = 6


@dataclass(frozen=True, slots=True, kw_only=True)
class FileInfo:
    sha256: str
    """Hex digest of the uncompressed bytes."""
    size: int
    """Uncompressed bytes."""
    gzip_size: int
    rows: int
    """Data rows, the header not counted."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredFile:
    info: FileInfo
    gzip: bytes | None
    """The gzip member, if it was asked for."""


def encode_report_csv(rows: pl.DataFrame) -> tuple[FileInfo, bytes]:
    """The report's CSV as the CLI writes it (schema REPORT, in the frame's order), compressed."""
    return encode_csv(report_csv_bytes(rows), rows=rows.height)


def encode_csv(data: bytes, *, rows: int) -> tuple[FileInfo, bytes]:
    """A CSV file of `rows` data rows, compressed."""
    # mtime=0: the same rows always give the same bytes.
    compressed = gzip.compress(data, compresslevel=_GZIP_LEVEL, mtime=0)
    info = FileInfo(
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        gzip_size=len(compressed),
        rows=rows,
    )
    return info, compressed


async def store_report_file(
    session: AsyncSession,
    report_id: uuid.UUID,
    encoded: tuple[FileInfo, bytes],
    *,
    replace: bool = True,
) -> None:
    """Make `encoded` (`encode_report_csv`'s or `encode_csv`'s) the report's file, replacing any
    it had; with `replace=False`, only if it has none. Flushes, never commits: call it in the
    transaction that writes the report's final status, so a complete report has its file."""
    info, compressed = encoded
    values = {
        "report_id": report_id,
        "kind": REPORT_CSV,
        "sha256": info.sha256,
        "size": info.size,
        "rows": info.rows,
        "gzip": compressed,
    }
    insert = postgresql.insert(ReportFile).values(values)
    keys = [ReportFile.report_id, ReportFile.kind]
    if replace:
        changed = {name: insert.excluded[name] for name in ("sha256", "size", "rows", "gzip")}
        statement = insert.on_conflict_do_update(
            index_elements=keys, set_={**changed, "created_at": sa.func.now()}
        )
    else:
        statement = insert.on_conflict_do_nothing(index_elements=keys)
    await session.execute(statement)


async def read_report_file(
    session: AsyncSession, report_id: uuid.UUID, *, content: bool, kind: str = REPORT_CSV
) -> StoredFile | None:
    """The report's file of that kind, its bytes too if `content`; None if it has none.

    One statement: digest and bytes come from the same version of the row.
    """
    columns = [
        ReportFile.sha256,
        ReportFile.size,
        sa.func.length(ReportFile.gzip),
        ReportFile.rows,
    ]
    if content:
        columns.append(ReportFile.gzip)
    row = (
        await session.execute(
            sa.select(*columns).where(ReportFile.report_id == report_id, ReportFile.kind == kind)
        )
    ).one_or_none()
    if row is None:
        return None
    info = FileInfo(sha256=row[0], size=row[1], gzip_size=row[2], rows=row[3])
    return StoredFile(info=info, gzip=row[4] if content else None)


async def delete_report_files(session: AsyncSession, report_id: uuid.UUID) -> None:
    await session.execute(sa.delete(ReportFile).where(ReportFile.report_id == report_id))
