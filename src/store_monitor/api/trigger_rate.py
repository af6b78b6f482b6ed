"""The trigger's rate check, a dependency that runs before the key check (see
`web.rate_limits`): a refused trigger costs no database work."""

from typing import Annotated

from fastapi import Depends, Request

from store_monitor.settings import AuthMode
from store_monitor.web.auth import presented_key_hash
from store_monitor.web.deps import StateDep
from store_monitor.web.rate_limits import counted_as, too_many_triggers


async def within_trigger_rate(
    request: Request,
    state: StateDep,
    key_hash: Annotated[bytes | None, Depends(presented_key_hash)],
) -> None:
    if state.settings.auth_mode is AuthMode.required and key_hash is None:
        return  # no key, or a malformed one: the key check answers
    wait = await state.trigger_limiter.retry_after(counted_as(request, key_hash))
    if wait is not None:
        raise too_many_triggers(wait)
