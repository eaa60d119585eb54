"""The local environment's lifecycle: `up`, `status` and `down`.

`up` is level-triggered: it computes the plan, checks every port and the slot before it
starts anything, then brings each part to "running and healthy" in dependency order,
starting only what is not already running. So `up` after `up` starts nothing and `up`
after a crash restarts what died. `down` stops, by recorded PID, every process the
environment started, kills what containerd started on its behalf, unmounts everything
under the state directory and removes the network it made.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx

from kubeglobe.local import network
from kubeglobe.local.apiserver import apiserver_components, endpoint_url
from kubeglobe.local.binaries import K8sBinaries, build_binaries
from kubeglobe.local.cluster_dns import apply_cluster_dns, wait_cluster_dns
from kubeglobe.local.component import Component
from kubeglobe.local.control_plane_image import control_plane_image
from kubeglobe.local.controlplane import (
    component_kubeconfig,
    controlplane_components,
    controlplane_daemons,
)
from kubeglobe.local.etcd import etcd_components
from kubeglobe.local.health import http_client, port_is_free, probe_http, wait_until
from kubeglobe.local.images import PAUSE_IMAGE, build_all_images, build_image, import_images
from kubeglobe.local.kubeconfig import write_kubeconfig
from kubeglobe.local.loadbalancer import loadbalancer_components
from kubeglobe.local.mounts import unmount_below
from kubeglobe.local.node import (
    CONTROL_PLANE_ROLES,
    NodePaths,
    node_components,
    pod_uids_under,
    remove_pod_logs,
)
from kubeglobe.local.pki import ClusterPki, ensure_cluster_pki
from kubeglobe.local.platform import (
    api_url,
    apply_platform_workloads,
    ensure_imported,
    ensure_registered,
    prepare_platform,
    wait_platform_workloads,
)
from kubeglobe.local.platform_image import build_platform_image
from kubeglobe.local.preflight import preflight
from kubeglobe.local.process import (
    ProcessRecord,
    is_running,
    kill_shims,
    start_daemon,
    stop_process,
)
from kubeglobe.local.registry import apply_registry, push_images
from kubeglobe.local.registry_image import registry_image
from kubeglobe.local.smoke import smoke_test
from kubeglobe.local.state import (
    LAYOUT,
    EnvironmentConflict,
    EnvironmentState,
    check_slot,
    claim_slot,
    claimed_state_dirs,
    environment_lock,
    load_state,
    release_slot,
    save_state,
    slot_owner,
)
from kubeglobe.local.static_pods import static_pod_manifests, write_static_pods
from kubeglobe.local.topology import (
    GLOBAL,
    MAX_SLOT,
    ClusterPlan,
    EnvironmentPlan,
    plan_environment,
)

Report = Callable[[str], None]

# Start order; each phase waits for all of its parts to be healthy before the next.
PHASES: tuple[tuple[str, ...], ...] = (
    ("etcd",),
    ("kube-apiserver",),
    ("haproxy",),
    ("kube-controller-manager", "kube-scheduler"),
    ("containerd",),
    ("kubelet",),
    ("kube-proxy",),
)
NODE_READY_TIMEOUT = 120.0
# Onboarded by `up` itself, so the demo starts with a managed cluster.
IMPORTED_AT_UP = ("workload-1",)
REGISTERED_AT_UP = ("workload-2",)


class EnvironmentError_(RuntimeError):
    """An environment operation failed; the message says what and how to fix it."""


@dataclass(frozen=True)
class ComponentStatus:
    key: str
    cluster: str
    kind: str
    pid: int | None
    port: int | None
    running: bool
    health: str


def _quiet(_: str) -> None:
    return None


def _pick_slot(state_dir: Path) -> int:
    for slot in range(MAX_SLOT + 1):
        owner = slot_owner(slot)
        if owner is not None and owner.resolve() != state_dir.resolve():
            continue
        if owner is None and network.bridge_in_use(f"kgbr{slot}"):
            continue
        return slot
    raise EnvironmentConflict(f"all {MAX_SLOT + 1} environment slots are taken; run down on one")


def resolve_plan(
    *, state_dir: Path, workload_clusters: int | None, slot: int | None = None,
    port_base: int | None = None, global_workers: int | None = None,
    workload_nodes: int | None = None, any_layout: bool = False,
) -> tuple[EnvironmentPlan, EnvironmentState]:
    """The plan of the environment in state_dir: the recorded one, or a new one.
    `any_layout`: also for a state of an earlier layout (for `down`, which must stop it)."""
    state = load_state(state_dir)
    if state is not None:
        if state.layout != LAYOUT and not any_layout:
            raise EnvironmentConflict(
                f"the environment in {state_dir} has an earlier layout ({state.layout}; this "
                f"KubeGlobe makes {LAYOUT}: global on three control-plane node hosts); run "
                f"`kubeglobe local down --purge --state-dir {state_dir}` and start it again"
            )
        asked = {"--workload-clusters": (workload_clusters, state.workload_clusters),
                 "--slot": (slot, state.slot), "--port-base": (port_base, state.port_base),
                 "--global-workers": (global_workers, state.global_workers),
                 "--nodes": (workload_nodes, state.workload_nodes)}
        for flag, (want, have) in asked.items():
            if want is not None and want != have:
                raise EnvironmentConflict(
                    f"the environment in {state_dir} was created with {flag} {have}, "
                    f"not {want}; run `kubeglobe local down --purge --state-dir {state_dir}` "
                    "first, or use another --state-dir"
                )
    else:
        chosen = _pick_slot(state_dir) if slot is None else slot
        plan = plan_environment(
            state_dir=state_dir, slot=chosen,
            workload_clusters=2 if workload_clusters is None else workload_clusters,
            port_base=port_base, global_workers=1 if global_workers is None else global_workers,
            workload_nodes=1 if workload_nodes is None else workload_nodes,
        )
        state = EnvironmentState(
            slot=chosen, port_base=plan.port_base, workload_clusters=len(plan.clusters) - 1,
            global_workers=1 if global_workers is None else global_workers,
            workload_nodes=1 if workload_nodes is None else workload_nodes, layout=LAYOUT,
        )
    plan = plan_environment(
        state_dir=state_dir, slot=state.slot, workload_clusters=state.workload_clusters,
        port_base=state.port_base, global_workers=state.global_workers,
        workload_nodes=state.workload_nodes,
    )
    return plan, state


def existing_plan(state_dir: Path) -> EnvironmentPlan:
    """The plan of an environment that was started before; a clear error if there is none."""
    state_dir = state_dir.resolve()
    if load_state(state_dir) is None:
        raise EnvironmentError_(
            f"no environment in {state_dir}; start one with `kubeglobe local up`"
        )
    return resolve_plan(state_dir=state_dir, workload_clusters=None)[0]


def components(*, plan: EnvironmentPlan, binaries: K8sBinaries) -> list[Component]:
    found: list[Component] = []
    for cluster in plan.clusters:
        pki = _pki(plan, cluster)
        found += etcd_components(env=plan, cluster=cluster, pki=pki)
        found += apiserver_components(binaries=binaries, env=plan, cluster=cluster, pki=pki)
        found += loadbalancer_components(env=plan, cluster=cluster, pki=pki)
        found += controlplane_components(binaries=binaries, env=plan, cluster=cluster, pki=pki)
        found += node_components(binaries=binaries, env=plan, cluster=cluster, pki=pki)
    return found


def _pki(plan: EnvironmentPlan, cluster: ClusterPlan) -> ClusterPki:
    return ClusterPki(dir=plan.cluster_dir(cluster.name) / "pki")


def admin_kubeconfig(plan: EnvironmentPlan, cluster: str) -> Path:
    plan.cluster(cluster)
    return plan.cluster_dir(cluster) / "admin.kubeconfig"


def _write_kubeconfigs(plan: EnvironmentPlan, cluster: ClusterPlan, pki: ClusterPki) -> None:
    server = endpoint_url(plan, cluster)
    users = {
        admin_kubeconfig(plan, cluster.name): ("kubeglobe-admin", pki.pair("admin")),
        component_kubeconfig(plan, cluster, "controller-manager"): (
            "system:kube-controller-manager", pki.pair("controller-manager")),
        component_kubeconfig(plan, cluster, "scheduler"): (
            "system:kube-scheduler", pki.pair("scheduler")),
    }
    for node in cluster.nodes:
        paths = NodePaths(plan, node)
        users[paths.kubeconfig] = (f"system:node:{node.name}", pki.pair(f"kubelet-{node.name}"))
        users[paths.proxy_kubeconfig] = ("system:kube-proxy", pki.pair("kube-proxy"))
    for path, (user, pair) in users.items():
        write_kubeconfig(
            path=path, cluster=f"kubeglobe-{cluster.name}", server=server, ca=pki.ca.cert,
            user=user, client=pair,
        )


def _check_ports(plan: EnvironmentPlan, state: EnvironmentState, parts: list[Component]) -> None:
    ours = {p for c in parts if _running(state, c.key) for p in c.host_ports}
    busy = [p for p in plan.ports() if p not in ours and not port_is_free("0.0.0.0", p)]
    if busy:
        raise EnvironmentConflict(
            f"ports {', '.join(map(str, busy))} are in use by another program; stop it, or "
            f"start this environment on other ports with --port-base (now {plan.port_base}) "
            "and a new --state-dir"
        )


def _running(state: EnvironmentState, key: str) -> bool:
    record = state.processes.get(key)
    return record is not None and is_running(record)


def _write_files(component: Component) -> None:
    for path, text in component.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


def _start(
    plan: EnvironmentPlan, state: EnvironmentState, component: Component
) -> ProcessRecord | None:
    """Start the component unless it runs with its current settings; restart it if not."""
    if _running(state, component.key):
        running = state.processes[component.key]
        if running.spec_hash == component.spec_hash:
            return None
        stop_process(running)  # its argv or config changed: level-trigger to the new one
    _write_files(component)
    record = start_daemon(
        argv=component.argv, log=component.log, netns=component.netns, env=component.env
    )
    record.spec_hash = component.spec_hash
    state.processes[component.key] = record
    save_state(plan.state_dir, state)
    return record


def _recover_node(plan: EnvironmentPlan, state: EnvironmentState, cluster: ClusterPlan) -> None:
    """Prepare a crashed node's containerd to start again.

    Its shims and containers are left running on purpose: a restarted containerd
    reconnects to them, so a containerd crash costs no running container, as on a real
    node. Only the dead daemon's socket file is removed.
    """
    for node in cluster.nodes:
        if not _running(state, f"{cluster.name}/{node.name}/containerd"):
            NodePaths(plan, node).socket.unlink(missing_ok=True)


def up(
    *, state_dir: Path, workload_clusters: int | None = None, slot: int | None = None,
    port_base: int | None = None, global_workers: int | None = None,
    workload_nodes: int | None = None, report: Report = _quiet,
) -> EnvironmentPlan:
    """Bring the whole environment to running and healthy; safe to call again at any time."""
    state_dir = state_dir.resolve()
    preflight()
    with environment_lock(state_dir):
        plan, state = resolve_plan(
            state_dir=state_dir, workload_clusters=workload_clusters, slot=slot,
            port_base=port_base, global_workers=global_workers, workload_nodes=workload_nodes,
        )
        check_slot(plan.slot, state_dir)
        binaries = build_binaries(progress=report, check=smoke_test)
        report("building images")
        built = build_all_images()
        platform_image = build_platform_image(progress=report)
        registry_spec = registry_image()
        control_plane = control_plane_image(binaries)
        # Every node imports the pause image (a pod's sandbox), the control-plane nodes of
        # global the registry's and their static pods' too (both run before the
        # registry); every other image the nodes pull from the registry.
        on_every_node = [(s, a) for s, a in built if s.name == PAUSE_IMAGE]
        on_planes = [*on_every_node, (registry_spec, build_image(registry_spec)),
                     control_plane]
        pulled = [*(i for i in built if i[0].name != PAUSE_IMAGE), platform_image]
        parts = components(plan=plan, binaries=binaries)
        _stop_retired(state_dir, state, parts, report)
        _check_ports(plan, state, parts)
        claim_slot(plan.slot, state_dir, state)

        report(f"network: bridge {plan.bridge} {plan.host_ip}, {len(plan.nodes())} node hosts")
        network.ensure_host_bridge(plan)
        for node in plan.nodes():
            network.ensure_node_network(plan, node)
        for cluster in plan.clusters:
            report(f"{cluster.name}: certificates and kubeconfigs")
            pki = ensure_cluster_pki(env=plan, cluster=cluster)
            _write_kubeconfigs(plan, cluster, pki)

        started = 0
        for kinds in PHASES:
            batch = [c for c in parts if c.kind in kinds]
            if "containerd" in kinds:
                for cluster in plan.clusters:
                    _recover_node(plan, state, cluster)
            started += _run_phase(plan, state, batch, report)
            if "containerd" in kinds:
                for node in plan.nodes():
                    report(f"{node.name}: importing images")
                    import_images(socket=NodePaths(plan, node).socket,
                                  archives=on_planes if node.control_plane else on_every_node)
                _write_static_pods(plan, image=control_plane[0].name, report=report)
        _wait_static_pods(plan, report)
        for cluster in plan.clusters:
            _wait_cluster_ready(plan, cluster, report)
            if cluster.name == GLOBAL:  # its replicas start while the others get ready
                report(f"{GLOBAL}: image registry")
                apply_registry(plan=plan, kubeconfig=admin_kubeconfig(plan, GLOBAL),
                               image=registry_spec.name)
        report("pushing images to the registry")
        push_images(plan=plan, archives=pulled, kubeconfig=admin_kubeconfig(plan, GLOBAL))
        for cluster in plan.clusters:  # every cluster's at once, then wait for each
            report(f"{cluster.name}: cluster DNS")
            apply_cluster_dns(cluster=cluster, kubeconfig=admin_kubeconfig(plan, cluster.name),
                              image=platform_image[0].name)
        for cluster in plan.clusters:
            wait_cluster_dns(cluster=cluster, kubeconfig=admin_kubeconfig(plan, cluster.name))
        report("platform: installing CRDs and RBAC")
        global_cluster = plan.cluster(GLOBAL)
        prepare_platform(env=plan, cluster=global_cluster,
                         kubeconfig=admin_kubeconfig(plan, GLOBAL),
                         ca_cert=_pki(plan, global_cluster).ca.cert)
        report("platform: controller and API server pods")
        apply_platform_workloads(env=plan, kubeconfig=admin_kubeconfig(plan, GLOBAL),
                                 image=platform_image[0].name)
        hub_kubeconfig = admin_kubeconfig(plan, GLOBAL)
        report("platform: waiting for the gateway, controller and API server pods")
        wait_platform_workloads(kubeconfig=hub_kubeconfig)
        if global_cluster.platform_endpoint_port is not None:
            report("platform: waiting for the API endpoint")
            ca = _pki(plan, global_cluster).ca.cert
            wait_until("platform API endpoint",
                       partial(probe_http, f"{api_url(plan, global_cluster)}/readyz", ca=ca),
                       timeout=120)
        present = {c.name for c in plan.clusters}
        imported = [name for name in IMPORTED_AT_UP if name in present]
        registered = [name for name in REGISTERED_AT_UP if name in present]
        for name in imported:
            report(f"platform: importing {name}")
            ensure_imported(env=plan, hub_kubeconfig=hub_kubeconfig, name=name,
                            kubeconfig=admin_kubeconfig(plan, name))
        for name in registered:
            report(f"platform: registering {name} and deploying its agent")
            ensure_registered(env=plan, hub_kubeconfig=hub_kubeconfig, name=name,
                              kubeconfig=admin_kubeconfig(plan, name),
                              agent_image=platform_image[0].name)
        for name in imported + registered:
            report(f"platform: waiting for cluster {name} to be Ready")
            wait_until(f"cluster {name} Ready on the hub",
                       partial(cluster_phase_ready, plan, name), timeout=180)
        report(f"environment ready ({started} processes started, "
               f"{len(parts) - started} already running); API {api_url(plan, global_cluster)}")
        return plan


def _write_static_pods(plan: EnvironmentPlan, *, image: str, report: Report) -> None:
    """Each control-plane node's static pods in place, before its kubelet starts (a
    running kubelet picks a changed file up by itself)."""
    for cluster in plan.clusters:
        daemons = controlplane_daemons(env=plan, cluster=cluster, pki=_pki(plan, cluster))
        manifests = static_pod_manifests(env=plan, cluster=cluster, daemons=daemons,
                                         image=image)
        for node in cluster.nodes:
            if node.name in manifests:
                changed = write_static_pods(NodePaths(plan, node).static_pods,
                                            manifests[node.name])
                if changed:
                    report(f"{node.name}: static pods {', '.join(changed)}")


def _wait_static_pods(plan: EnvironmentPlan, report: Report) -> None:
    for cluster in plan.clusters:
        pki = _pki(plan, cluster)
        for d in controlplane_daemons(env=plan, cluster=cluster, pki=pki):
            if d.on_node_host:
                key = f"{cluster.name}/{d.daemon.name}"
                report(f"{key}: waiting for its static pod to be healthy")
                wait_until(f"{key} (a static pod; `kubectl -n kube-system logs` shows why)",
                           partial(probe_http, d.healthz, ca=pki.ca.cert), timeout=120)


def _run_phase(plan: EnvironmentPlan, state: EnvironmentState, batch: list[Component],
               report: Report) -> int:
    """Start what is not running in `batch`, then wait until all of it is healthy."""
    started = sum(1 for c in batch if _start(plan, state, c) is not None)
    for component in batch:
        report(f"{component.key}: waiting for health")
        record = state.processes[component.key]
        wait_until(
            component.key, component.probe, timeout=component.start_timeout,
            alive=partial(is_running, record), log=str(component.log),
        )
    return started


def _get_json(plan: EnvironmentPlan, cluster: ClusterPlan, path: str) -> dict[str, object] | str:
    pki = _pki(plan, cluster)
    try:
        with http_client(ca=pki.ca.cert, client=pki.pair("admin")) as http:
            r = http.get(endpoint_url(plan, cluster) + path)
    except (httpx.HTTPError, OSError) as e:  # a probe: unreachable is an answer, not a crash
        return f"unreachable: {type(e).__name__}: {e}"
    if r.status_code != 200:
        return f"HTTP {r.status_code}"
    body: dict[str, object] = r.json()
    return body


def _label_control_plane(plan: EnvironmentPlan, cluster: ClusterPlan) -> None:
    """Give control-plane nodes kubeadm's role labels (a kubelet may not set them)."""
    pki = _pki(plan, cluster)
    patch = {"metadata": {"labels": dict.fromkeys(CONTROL_PLANE_ROLES, "")}}
    with http_client(ca=pki.ca.cert, client=pki.pair("admin")) as http:
        for node in cluster.nodes:
            if node.control_plane:
                http.patch(f"{endpoint_url(plan, cluster)}/api/v1/nodes/{node.name}",
                           json=patch, headers={"Content-Type": "application/merge-patch+json"},
                           ).raise_for_status()


def cluster_phase_ready(plan: EnvironmentPlan, name: str) -> str:
    """Probe: is the platform's Cluster `name` Ready (as the hub sees it)?"""
    got = _get_json(plan, plan.cluster(GLOBAL), f"/apis/kubeglobe.io/v1alpha1/clusters/{name}")
    if isinstance(got, str):
        return got
    status = got.get("status")
    phase = status.get("phase") if isinstance(status, dict) else None
    message = status.get("message") if isinstance(status, dict) else None
    return "ok" if phase == "Ready" else f"phase {phase}: {message}"


def node_ready(plan: EnvironmentPlan, cluster: ClusterPlan, node: str) -> str:
    got = _get_json(plan, cluster, f"/api/v1/nodes/{node}")
    if isinstance(got, str):
        return f"node {node}: {got}"
    status = got.get("status")
    conditions = status.get("conditions", []) if isinstance(status, dict) else []
    for cond in conditions:
        if cond.get("type") == "Ready":
            return "ok" if cond.get("status") == "True" else f"NotReady: {cond.get('message')}"
    return "no Ready condition yet"


def _wait_cluster_ready(plan: EnvironmentPlan, cluster: ClusterPlan, report: Report) -> None:
    for node in cluster.nodes:
        report(f"{cluster.name}: waiting for node {node.name} to be Ready")
        wait_until(
            f"node {node.name}", partial(node_ready, plan, cluster, node.name),
            timeout=NODE_READY_TIMEOUT,
        )

    _label_control_plane(plan, cluster)

    def default_sa() -> str:
        got = _get_json(plan, cluster, "/api/v1/namespaces/default/serviceaccounts/default")
        return got if isinstance(got, str) else "ok"

    wait_until(f"{cluster.name} default service account", default_sa, timeout=60)


def status(*, state_dir: Path) -> tuple[EnvironmentPlan, list[ComponentStatus]]:
    plan = existing_plan(state_dir)
    state = load_state(plan.state_dir)
    assert state is not None
    binaries = K8sBinaries(dir=Path("/nonexistent"))  # argv is not used by status
    rows = []
    for c in components(plan=plan, binaries=binaries):
        record = state.processes.get(c.key)
        running = record is not None and is_running(record)
        rows.append(
            ComponentStatus(
                key=c.key, cluster=c.cluster, kind=c.kind,
                pid=record.pid if record and running else None, port=c.port, running=running,
                health=c.probe() if running else "stopped",
            )
        )
    return plan, rows


def _stop_retired(state_dir: Path, state: EnvironmentState, parts: list[Component],
                  report: Report) -> None:
    """Stop the recorded processes of parts this version no longer has (an earlier
    version's, such as the gateway's sync once on the host), by their records."""
    known = {c.key for c in parts}
    for key in [k for k in state.processes if k not in known]:
        record = state.processes[key]
        if is_running(record):
            report(f"stopping {key} (pid {record.pid}): no longer part of the environment")
            stop_process(record)
            if is_running(record):
                raise RuntimeError(f"{key} (pid {record.pid}) did not stop; stop it and "
                                   "run the command again")
        state.processes.pop(key)
        save_state(state_dir, state)


def down(*, state_dir: Path, purge: bool = False, report: Report = _quiet) -> int:
    """Stop everything the environment started; returns how many processes were stopped.

    A directory without an environment state is left alone, even with `purge`: `down`
    deletes only what `up` made.
    """
    state_dir = state_dir.resolve()
    if load_state(state_dir) is None:
        return 0
    with environment_lock(state_dir):
        state = load_state(state_dir)
        assert state is not None
        plan, _ = resolve_plan(state_dir=state_dir, workload_clusters=None, any_layout=True)
        parts = components(plan=plan, binaries=K8sBinaries(dir=Path("/nonexistent")))
        stopped = 0
        stuck: list[str] = []

        def stop(component: Component) -> None:
            nonlocal stopped
            record = state.processes.get(component.key)
            if record is not None and is_running(record):
                report(f"stopping {component.key} (pid {record.pid})")
                stop_process(record)
                stopped += 1
                if is_running(record):
                    stuck.append(f"{component.key} (pid {record.pid})")
                    return  # keep the record: the process is still ours to stop
            state.processes.pop(component.key, None)
            save_state(state_dir, state)

        def stop_kinds(*kinds: str) -> None:
            for kind in kinds:
                for component in parts:
                    if component.kind == kind:
                        stop(component)

        _stop_retired(state_dir, state, parts, report)
        stop_kinds("kube-proxy", "kubelet")
        live = set().union(*(pod_uids_under(d) for d in {*claimed_state_dirs(), state_dir}))
        for node in plan.nodes():
            paths = NodePaths(plan, node)
            killed = kill_shims(str(paths.socket))
            if killed:
                report(f"{node.name}: stopped {killed} container shims")
            remove_pod_logs(paths, live_elsewhere=live)
        stop_kinds("containerd", "kube-controller-manager", "kube-scheduler", "haproxy",
                   "kube-apiserver", "etcd")
        report("unmounting")
        left = [str(p) for p in unmount_below(state_dir)]
        owner = slot_owner(plan.slot)
        if owner is None or owner == state_dir:
            report("removing node networks")
            left += _remove_network(plan)
            release_slot(plan.slot, state_dir)
        else:
            report(f"slot {plan.slot} now belongs to {owner}: its network is left alone")
        problems = [f"still running: {', '.join(stuck)}"] if stuck else []
        if left:
            problems.append(f"could not remove: {', '.join(left)}")
        if problems:
            raise EnvironmentError_(
                "; ".join(problems) + "; fix that (e.g. `fuser -m` shows mount holders) and "
                "run `kubeglobe local down` again"
            )
    if purge:
        _purge(state_dir)
    return stopped


def _remove_network(plan: EnvironmentPlan) -> list[str]:
    """Remove every node network and the bridge, carrying on past failures."""
    failed = []
    for node in plan.nodes():
        try:
            network.remove_node_network(node)
        except network.NetworkError as e:
            failed.append(f"{node.netns} ({e})")
    # Node hosts of an earlier layout (other names) in this slot, which is ours.
    for netns in network.slot_namespaces(plan.slot):
        try:
            network.remove_namespace(netns)
        except network.NetworkError as e:
            failed.append(f"{netns} ({e})")
    try:
        network.remove_host_bridge(plan)
    except network.NetworkError as e:
        failed.append(f"{plan.bridge} ({e})")
    return failed


# What `up` creates directly under a state directory; `purge` deletes only these.
STATE_ENTRIES = ("clusters", "nodes", "platform", "registry", "gateway", "state.json", "state.tmp",
                 ".lock")


def _purge(state_dir: Path) -> None:
    left = unmount_below(state_dir)
    if left:
        raise EnvironmentError_(f"refusing to delete {state_dir}: still mounted: {left}")
    for name in STATE_ENTRIES:
        entry = state_dir / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
    if state_dir.exists() and not any(state_dir.iterdir()):
        state_dir.rmdir()
