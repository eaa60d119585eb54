"""The lockout rule (pure): 5 failed logins within 24 h lock an account for 20 minutes.

The state is the User's status (`failedLogins`, `lockedUntil`); these functions take it
and a time and return the state to write, so the rule is tested without clocks or I/O.
A successful login clears the failures; a lock that ends clears them too, so the next
mistake after a lock does not lock again at once.
"""

from __future__ import annotations

import datetime as dt

from kubeglobe.api.tenancy import UserStatus
from kubeglobe.kube.microtime import format_time, parse_time

MAX_FAILURES = 5
WINDOW = dt.timedelta(hours=24)
LOCK_FOR = dt.timedelta(minutes=20)


def locked_until(status: UserStatus, now: dt.datetime) -> dt.datetime | None:
    """When the account unlocks, if it is locked at `now`."""
    if status.lockedUntil is None:
        return None
    until = parse_time(status.lockedUntil)
    return until if until > now else None


def _recent(status: UserStatus, now: dt.datetime) -> list[str]:
    return [t for t in status.failedLogins if now - parse_time(t) < WINDOW]


def after_failure(status: UserStatus, now: dt.datetime) -> UserStatus:
    """The status after one more failed login at `now`."""
    if status.lockedUntil is not None and locked_until(status, now) is None:
        status = status.model_copy(update={"failedLogins": [], "lockedUntil": None})
    failures = [*_recent(status, now), format_time(now)]
    if len(failures) >= MAX_FAILURES:
        return status.model_copy(update={"failedLogins": failures,
                                          "lockedUntil": format_time(now + LOCK_FOR)})
    return status.model_copy(update={"failedLogins": failures})


def after_success(status: UserStatus, now: dt.datetime) -> UserStatus:
    return status.model_copy(update={"failedLogins": [], "lockedUntil": None,
                                      "lastLoginTime": format_time(now)})


def unlocked(status: UserStatus) -> UserStatus:
    """The status after an admin unlocks the account."""
    return status.model_copy(update={"failedLogins": [], "lockedUntil": None})
