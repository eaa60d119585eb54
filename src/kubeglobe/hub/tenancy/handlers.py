"""kopf wiring of tenancy: every few seconds, per cluster, review and propagate."""

from __future__ import annotations

from typing import Any

import kopf

from kubeglobe.api.cluster import CLUSTER_PLURAL
from kubeglobe.api.meta import GROUP, VERSION
from kubeglobe.hub.tenancy.propagation import TenancyPropagator

# Drift is repaired within this many seconds (plus one apply round trip).
PROPAGATION_SECONDS = 5.0


def register_tenancy_handlers(registry: kopf.OperatorRegistry,
                              propagator: TenancyPropagator) -> None:
    @kopf.timer(GROUP, VERSION, CLUSTER_PLURAL, interval=PROPAGATION_SECONDS, sharp=True,
                registry=registry)
    async def propagate_tenancy(name: str, spec: Any, **_: Any) -> None:
        state = await propagator.read_state()
        await propagator.publish_verdicts(state, cluster=name)
        await propagator.reconcile_cluster(name=name, spec=dict(spec), state=state)

    del propagate_tenancy  # registered; the name is not used here
