"""The embedded mode's in-process job runner: jobs cut short by a shutdown are finished after
the next start."""

import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from api.service import embedded, serve, wait_until_final
from store_monitor.db.models import Report, ReportStatus
from store_monitor.db.session import create_engine, create_sessionmaker
from store_monitor.engine import compute_report
from store_monitor.settings import Settings


async def _stored(settings: Settings, report_id: str) -> Report:
    engine = create_engine(settings.resolved_database_url, process_name="store-monitor-tests")
    try:
        async with create_sessionmaker(engine)() as session:
            report = await session.get(Report, UUID(report_id))
    finally:
        await engine.dispose()
    assert report is not None
    return report


async def test_shutdown_interrupts_jobs_and_the_next_start_finishes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = embedded(tmp_path, sample_data=True)

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.5)
        return compute_report(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr("store_monitor.reports.compute_report", slow)
        async with serve(settings) as client:
            report_id = (await client.post("/trigger_report")).json()["report_id"]
            while (await client.get(f"/reports/{report_id}")).json()["status"] != "Running":
                pass

    interrupted = await _stored(settings, report_id)
    assert interrupted.status is ReportStatus.pending
    assert interrupted.error == "attempt 1 interrupted: runner stopped"

    async with serve(settings) as client:
        metadata = await wait_until_final(client, report_id)
    assert metadata["status"] == "Complete"
    assert metadata["attempts"] == 2
    assert metadata["row_count"] == 200  # the sample data set, loaded on the first start
