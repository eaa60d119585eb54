"""Timestamps for MicroTime fields (Lease acquire/renew times).

lightkube writes a datetime with `isoformat()`, which drops the fraction when the
microseconds are exactly zero; kube-apiserver 1.20 then refuses the object ("cannot
parse "Z" as ".000000""). A MicroTime from here never has zero microseconds.
"""

from __future__ import annotations

import datetime as dt


def micro_now() -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    return now if now.microsecond else now.replace(microsecond=1)
