"""Shared pieces of the component tests (see `__init__.py`): the built binaries.

A binary that is not built yet is an error naming `kubeglobe local build`, never a
skip: `make component` builds first.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kubeglobe.local.haproxy_build import require_haproxy


@pytest.fixture(scope="session")
def haproxy_bin() -> Path:
    """The project's patched HAProxy, as `kubeglobe local build` left it in the cache."""
    return require_haproxy()


def free_port() -> int:
    """A loopback port nothing listens on just now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
