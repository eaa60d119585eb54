"""What every part of the environment is, as the supervisor sees it.

A `Component` names one daemon: the argv that starts it, the network namespace it runs
in, the port it serves and a probe that says whether it is healthy. Component modules
(etcd, apiserver, control plane, load balancer, node) build these from the plan; the
environment starts, checks and stops them without knowing what they are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# The environment of every Go daemon (etcd, containerd, the Kubernetes components): the
# garbage collector runs at 50% heap growth, not 100%, which took the environment from
# 5,329 to 4,605 MiB resident (the five apiservers 2,035 to 1,433; bench/local_up.py);
# they are mostly idle, so the extra collections cost little.
GO_ENV = {"GOGC": "50"}


@dataclass(frozen=True)
class Component:
    key: str  # "<cluster>/<part>", unique in the environment, the key of its ProcessRecord
    cluster: str
    kind: str
    argv: list[str]
    log: Path
    probe: Callable[[], str]
    port: int | None = None  # the port people use, shown by `status`
    extra_ports: tuple[int, ...] = ()  # other host ports it listens on (etcd's peer port)
    netns: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    start_timeout: float = 60.0
    # Files (path -> text) the component reads at start; written before it starts.
    files: dict[Path, str] = field(default_factory=dict)

    @property
    def spec_hash(self) -> str:
        """Changes whenever what the process would be started with changes."""
        digest = hashlib.sha256(json.dumps([self.argv, sorted(self.env.items())]).encode())
        for path in sorted(self.files):
            digest.update(str(path).encode() + b"\0" + self.files[path].encode() + b"\0")
        return digest.hexdigest()[:16]

    @property
    def host_ports(self) -> set[int]:
        """Ports taken on the host (a port inside a node's namespace takes none)."""
        if self.netns is not None:
            return set()
        return {p for p in (self.port, *self.extra_ports) if p is not None}
