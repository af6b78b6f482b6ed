"""The retry pauses: growth, cap, jitter bounds, giving up, and about a day in all."""

import random

import pytest

from store_monitor.webhooks.backoff import JITTER, MAX_PAUSE_SECONDS, retry_delay

DEFAULT_BASE = 5.0
DEFAULT_ATTEMPTS = 12


def _pauses(
    draw: float, *, base: float = DEFAULT_BASE, attempts: int = DEFAULT_ATTEMPTS
) -> list[float]:
    pauses: list[float] = []
    for failed in range(1, attempts):
        pause = retry_delay(failed, max_attempts=attempts, base_seconds=base, random=lambda: draw)
        assert pause is not None
        pauses.append(pause)
    return pauses


def test_the_first_pause_is_the_base_and_each_grows_until_the_cap() -> None:
    pauses = _pauses(0.5)

    assert pauses[0] == pytest.approx(DEFAULT_BASE)
    assert pauses == sorted(pauses)
    assert pauses[-1] == pytest.approx(MAX_PAUSE_SECONDS)
    assert pauses[1] > 2 * pauses[0]


def test_the_defaults_retry_for_about_a_day() -> None:
    hour = 3600.0

    assert 20 * hour <= sum(_pauses(0.5)) <= 26 * hour
    assert sum(_pauses(0.0)) >= 18 * hour
    assert sum(_pauses(0.999999)) <= 28 * hour


def test_jitter_stays_within_its_bounds_and_spreads_the_pauses() -> None:
    source = random.Random(17)
    for failed in range(1, DEFAULT_ATTEMPTS):
        nominal = retry_delay(
            failed, max_attempts=DEFAULT_ATTEMPTS, base_seconds=DEFAULT_BASE, random=lambda: 0.5
        )
        assert nominal is not None
        drawn = [
            retry_delay(
                failed,
                max_attempts=DEFAULT_ATTEMPTS,
                base_seconds=DEFAULT_BASE,
                random=source.random,
            )
            for _ in range(200)
        ]
        assert all(
            d is not None and (1 - JITTER) * nominal <= d < (1 + JITTER) * nominal for d in drawn
        )
        assert len(set(drawn)) > 100


def test_after_the_last_attempt_there_is_no_retry() -> None:
    assert retry_delay(12, max_attempts=12, base_seconds=5, random=random.random) is None
    assert retry_delay(1, max_attempts=1, base_seconds=5, random=random.random) is None
    assert retry_delay(11, max_attempts=12, base_seconds=5, random=random.random) is not None


def test_many_attempts_or_a_large_base_stay_at_the_cap() -> None:
    assert retry_delay(999, max_attempts=1000, base_seconds=5, random=lambda: 0.5) == pytest.approx(
        MAX_PAUSE_SECONDS
    )
    assert retry_delay(
        1, max_attempts=12, base_seconds=10 * MAX_PAUSE_SECONDS, random=lambda: 0.5
    ) == pytest.approx(MAX_PAUSE_SECONDS)


def test_there_is_no_pause_before_any_failure() -> None:
    with pytest.raises(ValueError, match="at least one"):
        retry_delay(0, max_attempts=12, base_seconds=5, random=random.random)
