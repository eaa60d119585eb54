"""Caught failures, never silent: each one is logged where a person sees it and counted.

A loop that must outlive a failure (a watch, a lease renewal, a sync pass) catches it
and goes on; `caught` is the one way it does so. The log line names the component,
the operation and the error; the counter `kubeglobe_failures_total{component,operation,
error}` lets an alert see a failure that recurs. The counter lives in the process's
default Prometheus registry, which every process that serves `/metrics` exposes.

Never use this to hide a bug: catch what you expect (the types a network or an API
raises), and let anything else surface.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

FAILURES = Counter("kubeglobe_failures", "Failures caught and recovered from (retried, "
                   "answered or skipped)", ["component", "operation", "error"])


def caught(log: logging.Logger, *, component: str, operation: str, error: BaseException,
           level: int = logging.WARNING) -> None:
    """Log and count one failure that the caller recovers from."""
    FAILURES.labels(component, operation, type(error).__name__).inc()
    log.log(level, "%s: %s failed (%s: %s)", component, operation, type(error).__name__,
            error)


def count(*, component: str, operation: str, error: BaseException) -> None:
    """Count a failure the caller logs in its own words (once, not per retry)."""
    FAILURES.labels(component, operation, type(error).__name__).inc()
