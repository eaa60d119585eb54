"""failures.caught and failures.count: a recovered failure is logged and counted.

Pure: the counter is read from the process's default Prometheus registry, the one every
`/metrics` of the platform is meant to expose.
"""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from kubeglobe import failures


def _counted(component: str, operation: str, error: str) -> float:
    value = REGISTRY.get_sample_value(
        "kubeglobe_failures_total",
        {"component": component, "operation": operation, "error": error})
    return value or 0.0


def test_caught_logs_at_warning_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("kubeglobe.test.failures")
    before = _counted("unit-test", "caught", "ConnectionResetError")
    with caplog.at_level(logging.DEBUG, logger=log.name):
        failures.caught(log, component="unit-test", operation="caught",
                        error=ConnectionResetError("peer went away"))
    assert _counted("unit-test", "caught", "ConnectionResetError") == before + 1
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.name == log.name
    message = record.getMessage()
    for part in ("unit-test", "caught", "ConnectionResetError", "peer went away"):
        assert part in message


def test_caught_keeps_the_level_asked_for(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("kubeglobe.test.failures")
    with caplog.at_level(logging.DEBUG, logger=log.name):
        failures.caught(log, component="unit-test", operation="expected", level=logging.INFO,
                        error=TimeoutError())
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert "TimeoutError" in record.getMessage()


def test_count_counts_without_logging(caplog: pytest.LogCaptureFixture) -> None:
    before = _counted("unit-test", "count", "OSError")
    with caplog.at_level(logging.DEBUG):
        failures.count(component="unit-test", operation="count", error=OSError("disk"))
        failures.count(component="unit-test", operation="count", error=OSError("disk"))
    assert _counted("unit-test", "count", "OSError") == before + 2
    assert caplog.records == []


def test_errors_are_counted_by_their_own_type() -> None:
    before = _counted("unit-test", "by-type", "ValueError")
    failures.count(component="unit-test", operation="by-type", error=ValueError())
    failures.count(component="unit-test", operation="by-type", error=KeyError("k"))
    assert _counted("unit-test", "by-type", "ValueError") == before + 1
    assert _counted("unit-test", "by-type", "KeyError") >= 1
