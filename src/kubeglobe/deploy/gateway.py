"""The gateway in global (pure): HAProxy and its sync as a pod on each control-plane node.

A DaemonSet on the control-plane nodes (or the nodes `gateway_node_selector` picks), in
their host network: each replica serves the
platform API, the agents' port and the API servers' port to the agents on its node's
address, which the stable endpoint in front of the control-plane nodes (a load balancer
or, later, a VIP) spreads over. The pod's init container writes HAProxy's base
configuration and empty maps (`kubeglobe gateway --init-only`); then HAProxy (master and
worker, reloaded through its master socket) and the sync (`kubeglobe gateway`) share that
directory, a host path below `gateway_runtime_dir` named by the node. The sync has no
liveness probe on purpose: a sync that hangs is made harmless by the identity map's
leases (entries lapse within 30 s, every request then takes the API servers' path),
while a probe's restart could hide that. The headless `kubeglobe-gateway` Service lists
the ready replicas, where the API servers tell agents to attach, one connection pair each.
"""

from __future__ import annotations

from typing import Any

from kubeglobe.api.meta import (
    AGENTS_PORT,
    GATEWAY_SERVICE,
    SYSTEM_NAMESPACE,
)
from kubeglobe.deploy.manifests import (
    AGENTS_CA,
    CA_DIR,
    PART_OF,
    PLATFORM_CA,
    SERVER_TLS,
    Manifest,
)
from kubeglobe.deploy.values import PlatformValues

SERVERS_CA = "kubeglobe-servers-ca"  # the CA of the API servers' client certificates
RUN = "/run/kubeglobe-gateway"
HAPROXY = "/usr/local/sbin/haproxy"
TLS_DIR = "/etc/kubeglobe/tls"
AGENTS_CA_DIR = "/etc/kubeglobe/agents-ca"
SERVERS_CA_DIR = "/etc/kubeglobe/servers-ca"


def _sync_argv(values: PlatformValues) -> list[str]:
    return ["kubeglobe", "gateway", "--dir", RUN, "--haproxy", HAPROXY,
            "--platform-bind", f":{values.platform_port}",
            "--agent-bind", f":{values.agent_port}",
            "--servers-bind", f":{values.servers_port}",
            "--serving-pem", f"{TLS_DIR}/tls.crt",
            "--agents-ca", f"{AGENTS_CA_DIR}/tls.crt",
            "--servers-ca", f"{SERVERS_CA_DIR}/ca.crt",
            "--replicas-ca", f"{CA_DIR}/ca.crt"]


def gateway_manifests(values: PlatformValues, *, servers_ca_pem: str) -> list[Manifest]:
    labels = {"app.kubernetes.io/name": GATEWAY_SERVICE, **PART_OF}
    selector = {"matchLabels": {"app.kubernetes.io/name": GATEWAY_SERVICE}}
    meta = {"name": GATEWAY_SERVICE, "namespace": SYSTEM_NAMESPACE, "labels": labels}
    node_name = [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
    run = {"name": "run", "mountPath": RUN, "subPathExpr": "$(NODE_NAME)"}
    certs = [{"name": "tls", "mountPath": TLS_DIR, "readOnly": True},
             {"name": "agents-ca", "mountPath": AGENTS_CA_DIR, "readOnly": True},
             {"name": "servers-ca", "mountPath": SERVERS_CA_DIR, "readOnly": True},
             {"name": "platform-ca", "mountPath": CA_DIR, "readOnly": True}]
    ports = [{"name": "platform", "containerPort": values.platform_port, "protocol": "TCP"},
             {"name": AGENTS_PORT, "containerPort": values.agent_port, "protocol": "TCP"},
             {"name": "servers", "containerPort": values.servers_port, "protocol": "TCP"}]
    answers: dict[str, Any] = {"tcpSocket": {"port": values.platform_port},
                               "periodSeconds": 5, "timeoutSeconds": 3}
    common: dict[str, Any] = {"image": values.image, "imagePullPolicy": "IfNotPresent",
                              "env": node_name}
    pod = {
        "metadata": {"labels": labels},
        "spec": {
            "serviceAccountName": GATEWAY_SERVICE,
            "hostNetwork": True,  # on the node's address, where the stable endpoint sends
            "dnsPolicy": "ClusterFirstWithHostNet",
            "priorityClassName": "system-cluster-critical",
            "nodeSelector": dict(values.gateway_node_selector),
            "tolerations": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"},
                            {"key": "CriticalAddonsOnly", "operator": "Exists"}],
            "terminationGracePeriodSeconds": 10,
            "initContainers": [{
                **common, "name": "prepare", "command": [*_sync_argv(values), "--init-only"],
                # the whole CLI is imported: about 100 MiB for a moment
                "resources": {"requests": {"cpu": "10m", "memory": "64Mi"},
                              "limits": {"memory": "256Mi"}},
                "volumeMounts": [run, *certs]}],
            "containers": [
                {**common, "name": "haproxy",
                 "command": [HAPROXY, "-W", "-db", "-S", f"{RUN}/master.sock,mode,600",
                             "-f", f"{RUN}/haproxy.cfg", "-f", f"{RUN}/gateway.cfg"],
                 "ports": ports,
                 "readinessProbe": {**answers, "initialDelaySeconds": 1},
                 "livenessProbe": {**answers, "initialDelaySeconds": 10, "failureThreshold": 4},
                 "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                               "limits": {"memory": "256Mi"}},
                 "volumeMounts": [run, *certs]},
                {**common, "name": "sync", "command": _sync_argv(values),
                 "resources": {"requests": {"cpu": "50m", "memory": "96Mi"},
                               "limits": {"memory": "384Mi"}},
                 "volumeMounts": [run, *certs]},
            ],
            "volumes": [
                {"name": "run", "hostPath": {"path": values.gateway_runtime_dir,
                                             "type": "DirectoryOrCreate"}},
                # the serving pair the API servers use too; of the agents CA its certificate
                # only (signing agents is the servers' part)
                {"name": "tls", "secret": {"secretName": SERVER_TLS, "defaultMode": 0o400}},
                {"name": "agents-ca", "secret": {"secretName": AGENTS_CA, "defaultMode": 0o444,
                                                 "items": [{"key": "tls.crt",
                                                            "path": "tls.crt"}]}},
                {"name": "servers-ca", "configMap": {"name": SERVERS_CA}},
                {"name": "platform-ca", "configMap": {"name": PLATFORM_CA}},
            ],
        },
    }
    return [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": SERVERS_CA, "namespace": SYSTEM_NAMESPACE, "labels": PART_OF},
         "data": {"ca.crt": servers_ca_pem}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta,
         "spec": {"selector": selector, "template": pod,
                  "updateStrategy": {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": 1}}}},
        {"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": meta,
         "spec": {"maxUnavailable": 1, "selector": selector}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta,
         "spec": {"clusterIP": "None", "selector": selector["matchLabels"],
                  "ports": [{"name": p["name"], "port": p["containerPort"], "protocol": "TCP"}
                            for p in ports]}},
    ]
