"""What the platform's HAProxies have in common, gateway and agent alike (pure, but for
reading a program's version).

Both render HAProxy configuration: errors answered as Kubernetes `Status` objects,
servers named or numbered. Both need a recent HAProxy: `program_version` says which
one a program is.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from pathlib import Path

from kubeglobe.kube.status import status_json

_PROGRAM_VERSION = re.compile(r"^HAProxy version (\d+)\.(\d+)(?:\.(\d+))?\b", re.MULTILINE)


def program_version(program: str | Path) -> tuple[int, int, int] | None:
    """The version `program -v` reports, as (major, minor, patch); None when it is not
    an HAProxy that runs."""
    try:
        done = subprocess.run([str(program), "-v"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = _PROGRAM_VERSION.search(done.stdout)
    if found is None:
        return None
    return int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)


def status_errors(messages: dict[int, str]) -> list[str]:
    """Backend lines answering HAProxy's own 502/503/504 as Kubernetes `Status` objects
    (kubectl prints their message) instead of HAProxy's HTML pages. The messages hold
    cluster names (DNS labels) and plain words only: no quote to escape."""
    lines = []
    for code, message in sorted(messages.items()):
        body = status_json(code, message).decode()
        assert "'" not in body, "HAProxy's single-quoted strings cannot hold a quote"
        lines.append(f"    http-error status {code} content-type application/json "
                     f"string '{body}'")
    return lines


def is_host_name(host: str) -> bool:
    """True for a DNS name, False for an IP address literal."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False
