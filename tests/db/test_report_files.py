"""Report files: the CLI's CSV bytes, compressed, in one row; replaced by a recomputation,
kept by a second writer that only fills a gap, deleted with their report."""

import gzip
import hashlib

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from store_monitor.db.models import Report, ReportFile
from store_monitor.db.report_files import (
    delete_report_files,
    encode_report_csv,
    read_report_file,
    store_report_file,
)
from store_monitor.formats import report_csv_bytes
from store_monitor.frames import REPORT

from .test_report_data import ROWS, new_report


async def test_the_file_is_the_clis_csv_compressed(db_session: AsyncSession) -> None:
    report_id = await new_report(db_session)
    await store_report_file(db_session, report_id, encode_report_csv(ROWS))

    stored = await read_report_file(db_session, report_id, content=True)

    assert stored is not None
    assert stored.gzip is not None
    expected = report_csv_bytes(ROWS)
    assert gzip.decompress(stored.gzip) == expected
    assert stored.info.sha256 == hashlib.sha256(expected).hexdigest()
    assert stored.info.size == len(expected)
    assert stored.info.gzip_size == len(stored.gzip)
    assert stored.info.rows == ROWS.height


async def test_the_digest_alone_leaves_the_bytes_unread(db_session: AsyncSession) -> None:
    report_id = await new_report(db_session)
    await store_report_file(db_session, report_id, encode_report_csv(ROWS))

    stored = await read_report_file(db_session, report_id, content=False)

    assert stored is not None
    assert stored.gzip is None
    assert stored.info.rows == ROWS.height


async def test_a_recomputation_replaces_the_file_and_a_gap_filler_does_not(
    db_session: AsyncSession,
) -> None:
    report_id = await new_report(db_session)
    await store_report_file(db_session, report_id, encode_report_csv(ROWS))
    first = await read_report_file(db_session, report_id, content=False)

    await store_report_file(db_session, report_id, encode_report_csv(ROWS.head(2)))
    second = await read_report_file(db_session, report_id, content=True)
    await store_report_file(db_session, report_id, encode_report_csv(ROWS), replace=False)
    kept = await read_report_file(db_session, report_id, content=True)

    assert first is not None
    assert second is not None
    assert second.gzip is not None
    assert second.info.sha256 != first.info.sha256
    assert gzip.decompress(second.gzip) == report_csv_bytes(ROWS.head(2))
    assert kept == second
    count = await db_session.scalar(sa.select(sa.func.count()).select_from(ReportFile))
    assert count == 1


async def test_the_same_rows_give_the_same_bytes(db_session: AsyncSession) -> None:
    report_id = await new_report(db_session)
    other_id = await new_report(db_session)
    await store_report_file(db_session, report_id, encode_report_csv(ROWS))
    await store_report_file(db_session, other_id, encode_report_csv(ROWS))

    one = await read_report_file(db_session, report_id, content=True)
    other = await read_report_file(db_session, other_id, content=True)

    assert one is not None
    assert other is not None
    assert one.gzip == other.gzip


async def test_an_empty_report_is_its_header(db_session: AsyncSession) -> None:
    report_id = await new_report(db_session)
    await store_report_file(db_session, report_id, encode_report_csv(REPORT.to_frame()))

    stored = await read_report_file(db_session, report_id, content=True)

    assert stored is not None
    assert stored.gzip is not None
    assert gzip.decompress(stored.gzip) == report_csv_bytes(REPORT.to_frame())
    assert stored.info.rows == 0


async def test_files_go_with_their_report_or_on_their_own(db_session: AsyncSession) -> None:
    report_id = await new_report(db_session)
    other_id = await new_report(db_session)
    await store_report_file(db_session, report_id, encode_report_csv(ROWS))
    await store_report_file(db_session, other_id, encode_report_csv(ROWS))

    await db_session.execute(sa.delete(Report).where(Report.id == report_id))
    await delete_report_files(db_session, other_id)

    assert await read_report_file(db_session, report_id, content=False) is None
    assert await read_report_file(db_session, other_id, content=False) is None
