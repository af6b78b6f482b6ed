"""The Arq worker that runs report jobs: `arq.run_worker(worker_settings(get_settings()))`.

`store_monitor.worker.WorkerSettings` also works with Arq's own command line; it is built from
the environment when first looked up, not at import.
"""

from typing import Any

from store_monitor.settings import get_settings
from store_monitor.worker.config import shutdown, startup, worker_settings

__all__ = ["shutdown", "startup", "worker_settings"]


def __getattr__(name: str) -> Any:
    if name == "WorkerSettings":
        return worker_settings(get_settings())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
