"""The ready addresses of a Service's Endpoints (pure): where its pods answer now."""

from __future__ import annotations

from dataclasses import dataclass

from lightkube.models.core_v1 import EndpointSubset


@dataclass(frozen=True)
class Ready:
    name: str  # its pod's (the address when no pod is named)
    ip: str
    port: int


def ready_addresses(subsets: list[EndpointSubset] | None, *,
                    port: str | None = None, not_ready: bool = False) -> list[Ready]:
    """Ready addresses (`not_ready`: those not ready, which are not terminating) with the
    subset's port named `port` (its first without a name), sorted by pod name."""
    found = []
    for subset in subsets or []:
        number = next((p.port for p in subset.ports or []
                       if port is None or p.name == port), None)
        if number is None:
            continue
        for address in (subset.notReadyAddresses if not_ready else subset.addresses) or []:
            name = address.targetRef.name if address.targetRef and address.targetRef.name \
                else address.ip
            found.append(Ready(name=name, ip=address.ip, port=number))
    return sorted(found, key=lambda r: r.name)
