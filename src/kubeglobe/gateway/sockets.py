"""Where API server replicas open their per-cluster sockets for the gateway (pure).

Replica `i` serves the gateway on `servers/server-<i>.sock` (the platform API) and,
for each registered cluster whose tunnel it holds with raw connections on offer, on
`servers/server-<i>.d/<cluster>.sock`. The gateway renders a backend per registered
cluster from the replica directories it finds; HAProxy's checks tell which replicas
hold the tunnel right now. Replicas and gateway agree on the names through this module.
"""

from __future__ import annotations

import re
from pathlib import Path

UNIX_PATH_MAX = 97  # HAProxy's limit for a UNIX socket path (sun_path less its suffix)
_REPLICA_DIR = re.compile(r"^server-(\d+)\.d$")


def replica_directory(server_sockets: Path, replica: int) -> Path:
    return server_sockets / f"server-{replica}.d"


def cluster_socket(directory: Path, cluster: str) -> Path | None:
    """The cluster's socket in a replica's directory; None if the path is too long for
    HAProxy (that cluster then takes the per-request path)."""
    path = directory / f"{cluster}.sock"
    return path if len(str(path)) <= UNIX_PATH_MAX else None


def replica_directories(server_sockets: Path) -> dict[int, Path]:
    """The replicas that have per-cluster directories, by index."""
    found: dict[int, Path] = {}
    if not server_sockets.is_dir():
        return found
    for entry in server_sockets.iterdir():
        match = _REPLICA_DIR.match(entry.name)
        if match and entry.is_dir():
            found[int(match.group(1))] = entry
    return dict(sorted(found.items()))
