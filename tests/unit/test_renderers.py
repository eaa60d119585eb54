from pathlib import Path

import yaml

from kubeglobe.gateway.frontend import GatewayFiles
from kubeglobe.local.loadbalancer import render_haproxy_config
from kubeglobe.local.node import NodePaths, render_containerd_config, render_kubelet_config
from kubeglobe.local.pki import ClusterPki
from kubeglobe.local.topology import plan_environment


def test_haproxy_balances_every_apiserver_with_readyz_checks() -> None:
    env = plan_environment(state_dir=Path("/s"), slot=1, workload_clusters=0)
    g = env.clusters[0]
    text = render_haproxy_config(env=env, cluster=g, ca_file="/ca.crt",
                                 gateway=GatewayFiles(Path("/s/gw")),
                                 serving_pem=Path("/s/gw/serving.pem"))
    for a in g.apiservers:
        assert f"server {a.name} {a.ip}:{a.port} check check-ssl" in text
    assert len({a.ip for a in g.apiservers}) == 3  # one per control-plane node host
    assert "option httpchk GET /readyz" in text
    assert f"bind 127.0.0.1:{g.endpoint_port}" in text
    assert f"bind 127.0.0.1:{g.platform_endpoint_port} ssl crt /s/gw/serving.pem" in text
    assert "use_backend %[var(txn.kg_backend)] if kg_fast kg_imported" in text
    # the API servers are pods: their backend is the gateway's to write, from Endpoints
    assert "\nbackend platform-servers" not in text
    assert "unix@" not in text
    assert "tune.bufsize 262144" in text  # HTTP/2 to agents: port-forward speed
    assert "default_backend platform-servers" in text
    assert "option idle-close-on-response" in text  # reloads lose no keep-alive request


def test_node_settings_seen_working_here() -> None:
    env = plan_environment(state_dir=Path("/s"), slot=1, workload_clusters=0)
    node = env.clusters[0].nodes[0]
    paths = NodePaths(env, node)
    containerd = render_containerd_config(paths, mirrors=env.registry_mirrors(node))
    assert "restrict_oom_score_adj = true" in containerd
    assert "netns_mounts_under_state_dir = true" in containerd
    assert f'address = "{paths.socket}"' in containerd
    # the platform registry: this control-plane node's own replica first, then the others
    assert ('[plugins."io.containerd.grpc.v1.cri".registry.mirrors."kubeglobe.local"]\n'
            '    endpoint = ["http://10.250.1.11:5000", "http://10.250.1.12:5000", '
            '"http://10.250.1.13:5000"]') in containerd
    kubelet = yaml.safe_load(
        render_kubelet_config(node=node, pki=ClusterPki(dir=Path("/pki")), paths=paths,
                              cluster_dns="10.96.0.10")
    )
    assert kubelet["cgroupDriver"] == "cgroupfs" and kubelet["cgroupsPerQOS"] is False
    assert kubelet["failSwapOn"] is False and kubelet["enforceNodeAllocatable"] == []
    assert kubelet["address"] == node.ip
    assert kubelet["clusterDNS"] == ["10.96.0.10"] and kubelet["clusterDomain"] == "cluster.local"


def test_spec_hash_follows_argv_and_config_files() -> None:
    from kubeglobe.local.component import Component

    def part(argv: list[str], text: str) -> Component:
        return Component(key="c/x", cluster="c", kind="x", argv=argv, log=Path("/l"),
                         probe=lambda: "ok", files={Path("/cfg"): text})

    base = part(["a", "--flag"], "v1").spec_hash
    assert part(["a", "--flag"], "v1").spec_hash == base
    assert part(["a", "--other"], "v1").spec_hash != base
    assert part(["a", "--flag"], "v2").spec_hash != base
