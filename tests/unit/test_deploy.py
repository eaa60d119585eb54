"""The platform's workloads in global, rendered from typed values."""

from __future__ import annotations

import pydantic
import pytest

from kubeglobe.deploy.manifests import CONTROLLER, controller_manifests
from kubeglobe.deploy.values import PlatformValues

VALUES = PlatformValues(image="kubeglobe.local/kubeglobe:1", platform_url="https://gw:443",
                        platform_ca_pem="-----BEGIN CERTIFICATE-----\n")


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
        PlatformValues(image="i", platform_url="u", platform_ca_pem="c", controller_replicas=0)
    with pytest.raises(pydantic.ValidationError, match="extra"):
        PlatformValues.model_validate({"image": "i", "platform_url": "u",
                                       "platform_ca_pem": "c", "replicas": 3})
