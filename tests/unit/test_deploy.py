"""The platform's workloads in global, rendered from typed values."""

from __future__ import annotations

import pydantic
import pytest

from kubeglobe.deploy.manifests import (
    CONTROLLER,
    SERVER,
    controller_manifests,
    server_manifests,
)
from kubeglobe.deploy.values import PlatformValues

VALUES = PlatformValues(image="kubeglobe.local/kubeglobe:1", platform_url="https://gw:443",
                        platform_ca_pem="-----BEGIN CERTIFICATE-----\n",
                        agent_gateway="gw:20017", servers_gateway="gw:20018")
REQUIRED = {"image": "i", "platform_url": "u", "platform_ca_pem": "c", "agent_gateway": "a:1",
            "servers_gateway": "s:2"}


def test_the_controller_is_two_spread_replicas_under_its_own_account() -> None:
    objects = {m["kind"]: m for m in controller_manifests(VALUES)}
    deployment = objects["Deployment"]
    assert deployment["metadata"] == {"name": CONTROLLER, "namespace": "kubeglobe-system",
                                      "labels": deployment["spec"]["template"]["metadata"]
                                      ["labels"]}
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == CONTROLLER  # the ClusterRole the install gives
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    container = pod["containers"][0]
    assert container["image"] == VALUES.image
    command = container["command"]
    assert command[:2] == ["kubeglobe", "controller"]
    assert command[command.index("--platform-url") + 1] == "https://gw:443"
    ca = command[command.index("--platform-ca") + 1]
    assert any(ca.startswith(v["mountPath"]) for v in container["volumeMounts"])
    port = int(command[command.index("--metrics-port") + 1])
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == port
    assert container["resources"]["limits"]["memory"]
    assert objects["ConfigMap"]["data"] == {"ca.crt": VALUES.platform_ca_pem}
    assert objects["PodDisruptionBudget"]["spec"]["minAvailable"] == 1


def test_values_out_of_range_are_refused_naming_the_field() -> None:
    with pytest.raises(pydantic.ValidationError, match="controller_replicas"):
        PlatformValues.model_validate({**REQUIRED, "controller_replicas": 0})
    with pytest.raises(pydantic.ValidationError, match="extra"):
        PlatformValues.model_validate({**REQUIRED, "replicas": 3})


def test_the_servers_advertise_their_pod_address_and_mount_their_secrets() -> None:
    objects = {m["kind"]: m for m in server_manifests(VALUES)}
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert objects["Deployment"]["spec"]["replicas"] == 2
    assert pod["serviceAccountName"] == SERVER
    container = pod["containers"][0]
    command = container["command"]
    assert command[command.index("--advertise-url") + 1] == "https://$(POD_IP):8443"
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in \
        container["env"]
    assert command[command.index("--agent-gateway") + 1] == "gw:20017"
    assert command[command.index("--servers-gateway") + 1] == "gw:20018"
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    for flag in ("--tls-cert", "--tls-key", "--agents-ca-cert", "--agents-ca-key",
                 "--servers-gateway-cert", "--servers-gateway-key", "--ca-file"):
        path = command[command.index(flag) + 1]
        assert any(path.startswith(m + "/") for m in mounted), flag
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8443,
                                                      "scheme": "HTTPS"}
    service = objects["Service"]
    assert service["metadata"]["name"] == SERVER  # the gateway reads its Endpoints
    assert service["spec"]["ports"][0]["targetPort"] == 8443
    assert objects["PodDisruptionBudget"]["spec"]["minAvailable"] == 1


def test_the_gateway_runs_on_each_control_plane_node_in_its_host_network() -> None:
    from kubeglobe.deploy.gateway import gateway_manifests

    values = VALUES.model_copy(update={"platform_port": 20216, "agent_port": 20217,
                                       "servers_port": 20218,
                                       "gateway_runtime_dir": "/state/gateway"})
    objects = {m["kind"]: m for m in gateway_manifests(values, servers_ca_pem="SERVERS CA")}
    pod = objects["DaemonSet"]["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert pod["serviceAccountName"] == "kubeglobe-gateway"
    init, = pod["initContainers"]
    haproxy, sync = pod["containers"]
    assert init["command"][-1] == "--init-only"
    assert init["command"][:-1] == sync["command"]  # the same files, written the same way
    assert sync["command"][sync["command"].index("--platform-bind") + 1] == ":20216"
    assert sync["command"][sync["command"].index("--agent-bind") + 1] == ":20217"
    # HAProxy reads what the init container wrote, in the directory the three share
    assert haproxy["command"][-4:] == ["-f", "/run/kubeglobe-gateway/haproxy.cfg",
                                       "-f", "/run/kubeglobe-gateway/gateway.cfg"]
    for c in (init, haproxy, sync):
        run = next(m for m in c["volumeMounts"] if m["name"] == "run")
        assert run["subPathExpr"] == "$(NODE_NAME)"  # one directory per node
        assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} \
            in c["env"]
        assert c["resources"]["limits"]["memory"]
    assert {p["containerPort"] for p in haproxy["ports"]} == {20216, 20217, 20218}
    assert haproxy["readinessProbe"]["tcpSocket"] == {"port": 20216}
    assert "livenessProbe" not in sync  # a hung sync is made harmless by the leases
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["run"]["hostPath"]["path"] == "/state/gateway"
    # of the agents CA only its certificate: signing agents is the servers' part
    assert volumes["agents-ca"]["secret"]["items"] == [{"key": "tls.crt", "path": "tls.crt"}]
    assert objects["ConfigMap"]["data"] == {"ca.crt": "SERVERS CA"}
    service = objects["Service"]
    assert service["spec"]["clusterIP"] == "None"  # Endpoints: one address per replica
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]}["agents"] == 20217
    assert objects["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def test_the_gateway_may_only_read() -> None:
    from kubeglobe.hub.install import platform_manifests

    role = next(m for m in platform_manifests()
                if m["kind"] == "ClusterRole" and m["metadata"]["name"] == "kubeglobe-gateway")
    assert {v for rule in role["rules"] for v in rule["verbs"]} == {"get", "list", "watch"}
    assert {r for rule in role["rules"] for r in rule["resources"]} >= {"secrets", "endpoints"}
