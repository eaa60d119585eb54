"""Smoke test of freshly built binaries: does the apiserver survive CRD OpenAPI traffic?

The vendored reflect2 bug kills the apiserver with `fatal error: fault` when it encodes
certain maps, seen within minutes of CRD OpenAPI traffic. Before a build is marked
complete, this starts one etcd and one apiserver in a scratch directory on a free slot,
creates a few CRDs, reads `/openapi/v2` repeatedly and checks the apiserver still runs.
Everything it starts it stops, and the scratch directory and bridge are removed.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx

from kubeglobe.local import network
from kubeglobe.local.apiserver import apiserver_components
from kubeglobe.local.binaries import BinariesError, K8sBinaries
from kubeglobe.local.component import Component
from kubeglobe.local.etcd import etcd_components
from kubeglobe.local.health import http_client, port_is_free, wait_until
from kubeglobe.local.pki import ensure_cluster_pki
from kubeglobe.local.process import ProcessRecord, is_running, start_daemon, stop_process
from kubeglobe.local.state import EnvironmentState, claim_slot, release_slot, slot_owner
from kubeglobe.local.topology import MAX_SLOT, plan_environment

CRD_COUNT = 5
OPENAPI_READS = 10


def _crd(i: int) -> dict[str, object]:
    plural = f"smokes{i}"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.smoke.kubeglobe.io"},
        "spec": {
            "group": "smoke.kubeglobe.io",
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": f"smoke{i}", "kind": f"Smoke{i}"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {
                        "type": "object",
                        "properties": {"labels": {"type": "object",
                                                  "additionalProperties": {"type": "string"}},
                                       "size": {"type": "integer", "minimum": 0}},
                    }},
                }},
            }],
        },
    }


def _free_slot(scratch: Path) -> int:
    for slot in range(MAX_SLOT, -1, -1):
        plan = plan_environment(state_dir=scratch, slot=slot, workload_clusters=1)
        if slot_owner(slot) is None and not network.bridge_in_use(plan.bridge) and all(
            port_is_free("0.0.0.0", p) for p in plan.cluster("workload-1").ports()
        ):
            return slot
    raise BinariesError("no free slot to smoke-test the apiserver; run `kubeglobe local down`")


def smoke_test(binaries: K8sBinaries, progress: Callable[[str], None]) -> None:
    with tempfile.TemporaryDirectory(prefix="kubeglobe-smoke-") as tmp:
        scratch = Path(tmp)
        slot = _free_slot(scratch)
        plan = plan_environment(state_dir=scratch, slot=slot, workload_clusters=1)
        claim_slot(slot, scratch, EnvironmentState(slot=slot, port_base=plan.port_base,
                                                   workload_clusters=1))
        cluster = plan.cluster("workload-1")
        records: list[ProcessRecord] = []
        parts: list[Component] = []
        try:
            network.ensure_host_bridge(plan)
            pki = ensure_cluster_pki(env=plan, cluster=cluster)
            parts += etcd_components(env=plan, cluster=cluster, pki=pki)
            parts += apiserver_components(binaries=binaries, env=plan, cluster=cluster, pki=pki)
            for part in parts:
                progress(f"smoke test: starting {part.kind}")
                record = start_daemon(argv=part.argv, log=part.log)
                records.append(record)
                wait_until(part.key, part.probe, timeout=part.start_timeout,
                           alive=partial(is_running, record), log=str(part.log))
            apiserver = records[-1]
            url = f"https://{plan.host_ip}:{cluster.endpoint_port}"
            with http_client(ca=pki.ca.cert, client=pki.pair("admin"), timeout=30) as http:
                for i in range(CRD_COUNT):
                    r = http.post(f"{url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                  json=_crd(i))
                    if r.status_code not in (201, 409):
                        raise BinariesError(f"smoke test: creating a CRD got HTTP {r.status_code}")
                for n in range(OPENAPI_READS):
                    progress(f"smoke test: /openapi/v2 read {n + 1}/{OPENAPI_READS}")
                    r = http.get(f"{url}/openapi/v2")
                    if r.status_code != 200:
                        raise BinariesError(f"smoke test: /openapi/v2 got HTTP {r.status_code}")
                    time.sleep(0.5)
            if not is_running(apiserver):
                raise BinariesError(
                    "the built kube-apiserver died under CRD OpenAPI traffic (is the reflect2 "
                    f"fix applied?); see {parts[-1].log}"
                )
        # What starting, probing and the CRD traffic raise: a daemon that exits or never
        # gets healthy (RuntimeError: BinariesError, NotHealthy, NetworkError are ones),
        # files and sockets (OSError), PKI (ValueError), HTTP. A bug goes up as it is.
        except (RuntimeError, OSError, ValueError, httpx.HTTPError) as e:
            logs = "\n".join(Path(p.log).read_text()[-2000:] for p in parts if Path(p.log).exists())
            raise BinariesError(f"smoke test of the built binaries failed: {e}\n{logs}") from e
        finally:
            for record in reversed(records):
                stop_process(record)
            network.remove_host_bridge(plan)
            release_slot(slot, scratch)
