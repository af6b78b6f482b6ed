"""The service's settings for a command: a wrong value is a one-line error naming its variable."""

from typing import TYPE_CHECKING

from store_monitor.cli.console import fail

if TYPE_CHECKING:
    from store_monitor.settings import Settings


def service_settings() -> "Settings":
    from pydantic import ValidationError

    from store_monitor.settings import get_settings

    try:
        return get_settings()
    except ValidationError as error:
        problems = (
            f"STORE_MONITOR_{'_'.join(str(part) for part in problem['loc']).upper()}: "
            f"{problem['msg'].removeprefix('Value error, ')}"
            for problem in error.errors()
        )
        fail("; ".join(problems))
