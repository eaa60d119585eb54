"""Timestamps: MicroTime values for Leases, and the seconds-precision text form.

lightkube writes a datetime with `isoformat()`, which drops the fraction when the
microseconds are exactly zero; kube-apiserver 1.20 then refuses the object ("cannot
parse "Z" as ".000000""). A MicroTime from here never has zero microseconds.
"""

from __future__ import annotations

import datetime as dt


def micro_now() -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    return now if now.microsecond else now.replace(microsecond=1)


TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(moment: dt.datetime) -> str:
    """The RFC 3339 text Kubernetes uses for Time fields (UTC, whole seconds)."""
    return moment.astimezone(dt.UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=dt.UTC)
