"""How long to wait before retrying a failed delivery: exponential, capped, with jitter.

Each pause is `GROWTH` times the previous one, from `base_seconds`, capped at `MAX_PAUSE_SECONDS`,
then spread by ±`JITTER` so receivers that failed together are not retried together. With the
defaults (base 5 s, 12 attempts) the pauses are 5 s, 15 s, 45 s, 2¼ min, 6¾ min, 20 min, 1 h,
3 h, then 6 h three times: about 22½ hours from the first attempt to the last.
"""

from collections.abc import Callable
from typing import Final

GROWTH: Final = 3.0
MAX_PAUSE_SECONDS: Final = 6 * 3600.0
JITTER: Final = 0.2


def retry_delay(
    failed_attempts: int,
    *,
    max_attempts: int,
    base_seconds: float,
    random: Callable[[], float],
) -> float | None:
    """Seconds to wait before the next attempt, after `failed_attempts` (≥ 1) attempts failed;
    None when that was the last one allowed (the delivery has failed).

    `random` returns a float in [0, 1) (e.g. `random.random`); the pause is the nominal one
    times a factor in [1 - JITTER, 1 + JITTER).
    """
    if failed_attempts < 1:
        raise ValueError("retry_delay is asked after at least one failed attempt")
    if failed_attempts >= max_attempts:
        return None
    # The exponent is bounded so a large `max_attempts` cannot overflow a float.
    growth = GROWTH ** min(failed_attempts - 1, 64)
    nominal = min(base_seconds * growth, MAX_PAUSE_SECONDS)
    return nominal * (1 + JITTER * (2 * random() - 1))
