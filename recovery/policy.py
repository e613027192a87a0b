"""The retry policy as pure functions: how a failure is classified, when the next retry is due,
and the card networks' retry caps, which hold whatever a RetryPolicy says.

- hard declines (the policy's list, and generic declines past `do_not_honor_limit`) are never
  retried: the customer is asked to update the card;
- `authentication_required` is never retried off-session: the customer gets a pay link to pay
  on-session with 3-D Secure;
- network and processing errors are retried sooner, with backoff (`network_retry_minutes`),
  then on the schedule;
- anything else is a soft decline, retried at the policy's `retry_hours` after the case opened.

Card-network caps, per card, over a rolling window: Visa at most 15 retries in 30 days,
Mastercard at most 10 in 24 hours. A retry the cap does not allow is moved to the first moment
it does; past the end of the schedule it is not made at all.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

AUTHENTICATION_REQUIRED = "authentication_required"
GENERIC_DECLINES = ("do_not_honor", "generic_decline", "card_declined")


class FailureKind(StrEnum):
    HARD = "hard"
    AUTHENTICATION = "authentication"
    NETWORK = "network"
    SOFT = "soft"


@dataclass(frozen=True)
class NetworkCap:
    retries: int
    window: timedelta


NETWORK_CAPS = {
    "visa": NetworkCap(15, timedelta(days=30)),
    "mastercard": NetworkCap(10, timedelta(hours=24)),
}


@dataclass(frozen=True)
class Rules:
    """What of a RetryPolicy the schedule needs (a plain value: testable without a database)."""

    retry_hours: Sequence[int]
    network_retry_minutes: Sequence[int]
    hard_decline_codes: Sequence[str]
    network_error_codes: Sequence[str]
    do_not_honor_limit: int

    @property
    def schedule_length(self) -> timedelta:
        return timedelta(hours=max(self.retry_hours, default=0))


def classify(rules: Rules, *, failure_code: str, decline_code: str,
             generic_declines_before: int) -> FailureKind:
    """What kind of failure this is. `generic_declines_before`: the case's generic declines
    before this one."""
    codes = {failure_code, decline_code} - {""}
    if AUTHENTICATION_REQUIRED in codes:
        return FailureKind.AUTHENTICATION
    if codes & set(rules.hard_decline_codes):
        return FailureKind.HARD
    if codes & set(rules.network_error_codes):
        return FailureKind.NETWORK
    if (decline_code or failure_code) in GENERIC_DECLINES and (
        generic_declines_before + 1 > rules.do_not_honor_limit
    ):
        return FailureKind.HARD
    return FailureKind.SOFT


def next_retry_at(
    rules: Rules,
    *,
    kind: FailureKind,
    opened_at: datetime,
    failed_at: datetime,
    network_errors_in_a_row: int,
) -> datetime | None:
    """When to retry after a failure at `failed_at`, before caps; None: no retry."""
    if kind in (FailureKind.HARD, FailureKind.AUTHENTICATION):
        return None
    deadline = opened_at + rules.schedule_length
    if kind == FailureKind.NETWORK and 0 < network_errors_in_a_row <= len(
        rules.network_retry_minutes
    ):
        at = failed_at + timedelta(minutes=rules.network_retry_minutes[network_errors_in_a_row - 1])
        return at if at <= deadline else None
    for hours in sorted(rules.retry_hours):
        at = opened_at + timedelta(hours=hours)
        if at > failed_at:
            return at
    return None


def is_last_retry(rules: Rules, *, opened_at: datetime, at: datetime) -> bool:
    """Whether a retry at `at` is the schedule's last."""
    return not any(opened_at + timedelta(hours=h) > at for h in rules.retry_hours)


def has_network_cap(brand: str) -> bool:
    """Whether retries on a card of `brand` are capped by its network."""
    return (brand or "").lower() in NETWORK_CAPS


def capped(brand: str, *, at: datetime, retries_on_card: Iterable[datetime]) -> datetime:
    """The first moment at or after `at` when one more retry on a card of `brand` keeps every
    window of its network's cap within the limit, given the retries already made or planned
    on that card."""
    cap = NETWORK_CAPS.get((brand or "").lower())
    if cap is None:
        return at
    times = sorted(retries_on_card)
    while True:
        # Retries in the window that would hold a retry at `at`: (at - window, at + window).
        # Checking both sides keeps a retry planned earlier than ones already made legal too.
        low = bisect_right(times, at - cap.window)
        in_window = [t for t in times[low:] if t < at + cap.window]
        if not _window_exceeded(sorted([*in_window, at]), cap):
            return at
        # Move past the oldest retry that shares a window with `at`.
        at = in_window[0] + cap.window + timedelta(seconds=1)


def _window_exceeded(times: list[datetime], cap: NetworkCap) -> bool:
    """Whether some window of `cap.window` holds more than `cap.retries` of `times` (sorted)."""
    for i in range(len(times) - cap.retries):
        if times[i + cap.retries] - times[i] < cap.window:
            return True
    return False
