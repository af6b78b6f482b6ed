"""Fixtures of the operations tests: a small data set in the real files' formats."""

import pytest

from store_monitor.synthetic import GeneratedFiles, generate


@pytest.fixture(scope="session")
def data_files(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFiles:
    return generate(tmp_path_factory.mktemp("ops-data"), stores=10, days=8, seed=11)
