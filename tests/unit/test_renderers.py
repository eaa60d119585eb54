from pathlib import Path

import yaml

from kubeglobe.local.loadbalancer import render_haproxy_config
from kubeglobe.local.node import NodePaths, render_containerd_config, render_kubelet_config
from kubeglobe.local.pki import ClusterPki
from kubeglobe.local.topology import plan_environment


def test_haproxy_balances_every_apiserver_with_readyz_checks() -> None:
    env = plan_environment(state_dir=Path("/s"), slot=1, workload_clusters=0)
    g = env.clusters[0]
    text = render_haproxy_config(env=env, cluster=g, ca_file="/ca.crt")
    for a in g.apiservers:
        assert f"server {a.name} {a.ip}:{a.port} check check-ssl" in text
    assert len({a.ip for a in g.apiservers}) == 3  # one per control-plane node host
    assert "option httpchk GET /readyz" in text
    assert f"bind 127.0.0.1:{g.endpoint_port}" in text


def test_the_platform_ports_pass_through_to_the_gateway_on_each_control_plane_node() -> None:
    env = plan_environment(state_dir=Path("/s"), slot=1, workload_clusters=0)
    g = env.clusters[0]
    text = render_haproxy_config(env=env, cluster=g, ca_file="/ca.crt")
    planes = [n for n in g.nodes if n.control_plane]
    for port in (g.platform_endpoint_port, g.agent_endpoint_port, g.servers_agents_port):
        assert f"    bind 127.0.0.1:{port}\n" in text
        for n in planes:
            assert f"    server {n.name} {n.ip}:{port} check" in text
    # TLS ends in the gateway pods: nothing of the platform is done here
    assert "ssl crt" not in text and "use_backend" not in text and "stats socket" not in text
    assert "mode http" not in text


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
