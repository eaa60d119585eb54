"""kubectl through the cluster proxy, streams included: exec, attach, port-forward, cp,
and the rest of kubectl's surface, on an imported (workload-1) and a registered
(workload-2, through its agent's tunnel) cluster. Every test checks the real effect:
output made inside the container, bytes compared end to end, checksums."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import select
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from kubeglobe.hub.tokens import issue_token
from kubeglobe.local.platform import admin_token_file, api_url
from kubeglobe.local.topology import GLOBAL
from tests.integration.conftest import (
    Env,
    Platform,
    agent_detached,
    agent_pid,
    route,
    served,
    until,
)

NS = "streams"
IMAGE = "kubeglobe.local/busybox-httpd:1.0"
BOTH = pytest.mark.parametrize("cluster", ["workload-1", "workload-2"])  # import, register
WATCH_SECONDS = 5 * 60 + 20

PODS = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: {NS}}}
spec:
  containers:
  - {{name: web, image: "{IMAGE}", imagePullPolicy: IfNotPresent}}
---
apiVersion: v1
kind: Pod
metadata: {{name: echo, namespace: {NS}}}
spec:
  containers:
  - name: echo
    image: "{IMAGE}"
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "while read l; do echo got:$l; done"]
    stdin: true
---
apiVersion: v1
kind: Pod
metadata: {{name: ticker, namespace: {NS}}}
spec:
  containers:
  - name: ticker
    image: "{IMAGE}"
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 1; done"]
"""


@dataclass
class Kube:
    """kubectl through the proxy for one cluster, as the admin."""

    platform: Platform
    cluster: str
    kubeconfig: Path

    def argv(self, *args: str) -> list[str]:
        return [self.platform.env.kubectl_bin, f"--kubeconfig={self.kubeconfig}", "-n", NS,
                *args]

    def run(self, *args: str, stdin: bytes | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(self.argv(*args), input=stdin, capture_output=True,
                              timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr.decode().strip()}")
        return done

    def text(self, *args: str) -> str:
        return self.run(*args).stdout.decode()

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.argv(*args), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _direct(env: Env, cluster: str, *args: str) -> str:
    return env.kubectl(cluster, "-n", NS, *args).stdout


@pytest.fixture(scope="module")
def kubes(platform: Platform) -> Iterator[dict[str, Kube]]:
    found = {}
    for cluster in ("workload-1", "workload-2"):
        platform.wait_phase(cluster, "Ready", timeout=120)
        # A fresh namespace: one left by an earlier session may still be terminating.
        platform.env.kubectl(cluster, "delete", "namespace", NS, "--ignore-not-found",
                             "--wait=true", timeout=180)
        platform.env.kubectl(cluster, "apply", "-f", "-", stdin=PODS)
        for pod in ("web", "echo", "ticker"):
            platform.env.kubectl(cluster, "-n", NS, "wait", f"pod/{pod}",
                                 "--for=condition=Ready", "--timeout=120s")
        found[cluster] = Kube(platform, cluster, platform.proxy_kubeconfig(cluster))
    yield found
    for cluster in found:
        platform.env.kubectl(cluster, "delete", "namespace", NS, "--wait=false", check=False)


@dataclass
class LongWatches:
    """A `get -w` per cluster, started with the module so that it has lasted past
    `WATCH_SECONDS` by the time it is checked, while the other tests ran."""

    started: float
    procs: dict[str, subprocess.Popen[bytes]]
    checked: bool = False

    def check_lasted(self, platform: Platform) -> None:
        """Wait until the watches are `WATCH_SECONDS` old, then check each still shows
        a new object (once, pass or fail: a later call returns at once, so one failure is
        reported by the test that checked, not again by every test after it)."""
        if self.checked:
            return
        remaining = self.started + WATCH_SECONDS - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        self.checked = True
        for cluster, proc in self.procs.items():
            if proc.poll() is not None:
                assert proc.stderr is not None
                raise AssertionError(f"the watch on {cluster} ended: {proc.stderr.read()!r}")
            name = f"late-{int(time.time())}"
            platform.env.kubectl(cluster, "-n", NS, "create", "configmap", name)
            seen = _read_until(proc, f"configmap/{name}", timeout=30)
            assert f"configmap/{name}" in seen, seen


@pytest.fixture(scope="module", autouse=True)
def long_watches(kubes: dict[str, Kube]) -> Iterator[LongWatches]:
    procs = {c: k.popen("get", "configmaps", "-w", "--output-watch-events", "-o", "name")
             for c, k in kubes.items()}
    time.sleep(2)
    assert all(p.poll() is None for p in procs.values()), "a watch ended at once"
    yield LongWatches(started=time.monotonic(), procs=procs)
    for proc in procs.values():
        proc.kill()
        proc.wait(timeout=10)


# -- exec ----------------------------------------------------------------------------------

@BOTH
def test_exec_runs_in_the_container_and_returns_its_exit_code(kubes: dict[str, Kube],
                                                             cluster: str) -> None:
    kube = kubes[cluster]
    out = kube.text("exec", "web", "--", "sh", "-c", "echo made-in-$(hostname); id -u")
    assert out.split() == ["made-in-web", "0"]
    failed = kube.run("exec", "web", "--", "sh", "-c", "echo partial; exit 3", check=False)
    assert failed.returncode == 3 and failed.stdout == b"partial\n"
    assert b"command terminated with exit code 3" in failed.stderr


@BOTH
def test_exec_with_stdin_carries_every_byte(kubes: dict[str, Kube], cluster: str) -> None:
    data = os.urandom(3 << 20)
    out = kubes[cluster].run("exec", "-i", "web", "--", "sha256sum", stdin=data).stdout
    assert out.decode().split()[0] == hashlib.sha256(data).hexdigest()


@BOTH
def test_exec_with_a_terminal(kubes: dict[str, Kube], cluster: str) -> None:
    # `script` gives kubectl a pseudo-terminal, so -t really allocates one in the pod.
    command = " ".join(kubes[cluster].argv("exec", "-it", "web", "--", "sh"))
    done = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True,
                          input=b"test -t 0 && echo is-a-$(echo terminal)\nexit 7\n",
                          timeout=60)
    out = done.stdout.decode().replace("\r", "")
    assert "is-a-terminal" in out, out  # the shell's own output, not the echoed input
    assert done.returncode == 7, out


# -- attach --------------------------------------------------------------------------------

@BOTH
def test_attach_talks_to_the_running_process(kubes: dict[str, Kube], cluster: str) -> None:
    proc = kubes[cluster].popen("attach", "-i", "echo")
    assert proc.stdin is not None and proc.stdout is not None
    try:
        token = f"hello-{cluster}-{time.monotonic_ns()}"
        proc.stdin.write(f"{token}\n".encode())
        proc.stdin.flush()
        assert f"got:{token}" in _read_until(proc, f"got:{token}", timeout=30)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _read_until(proc: subprocess.Popen[bytes], wanted: str, timeout: float) -> str:
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and wanted.encode() not in seen:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            seen += chunk
    return seen.decode(errors="replace")


# -- port-forward --------------------------------------------------------------------------

def _forward(kube: Kube, *ports: str) -> tuple[subprocess.Popen[bytes], list[int]]:
    proc = kube.popen("port-forward", "pod/web", *ports)
    text = _read_until(proc, "", timeout=0)
    deadline = time.monotonic() + 30
    found: list[int] = []
    while time.monotonic() < deadline and len(found) < len(ports):
        text += _read_until(proc, "Forwarding from 127.0.0.1", timeout=1)
        found = [int(p) for p in re.findall(r"Forwarding from 127\.0\.0\.1:(\d+)", text)]
    assert len(found) == len(ports), text
    return proc, found


def _payload(kube: Kube, env: Env, name: str, mib: int) -> str:
    """A file of `mib` random MiB served by httpd in pod `web`; its sha256 as the pod
    computes it."""
    _direct(env, kube.cluster, "exec", "web", "--", "sh", "-c",
            f"dd if=/dev/urandom of=/www/{name} bs=1048576 count={mib} 2>/dev/null")
    return _direct(env, kube.cluster, "exec", "web", "--", "sha256sum",
                   f"/www/{name}").split()[0]


def _forwarded_sha(kube: Kube, name: str) -> str:
    """The sha256 of file `name` of pod `web`, fetched through `kubectl port-forward`."""
    proc, (port,) = _forward(kube, ":8080")
    try:
        return _fetch_sha(port, name)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _fetch_sha(port: int, name: str) -> str:
    digest = hashlib.sha256()
    with httpx.stream("GET", f"http://127.0.0.1:{port}/{name}", timeout=120,
                      trust_env=False) as r:
        r.raise_for_status()
        for chunk in r.iter_raw(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@BOTH
def test_port_forward_with_concurrent_forwards(kubes: dict[str, Kube], cluster: str,
                                              platform: Platform) -> None:
    kube = kubes[cluster]
    want = _payload(kube, platform.env, "pf", 8)
    proc, ports = _forward(kube, ":8080", ":8080")
    try:
        with ThreadPoolExecutor(4) as pool:
            # two forwarded ports, two connections each, all at once
            got = list(pool.map(lambda p: _fetch_sha(p, "pf"), [*ports, *ports]))
        assert got == [want] * 4
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_registered_streams_go_down_the_agents_own_connections(
        kubes: dict[str, Kube], platform: Platform) -> None:
    """port-forward straight from the gateway; exec through the servers (which can tell
    kubectl why a stream broke), then down the agent's connections too."""
    kube = kubes["workload-2"]
    until(lambda: route(platform) == "kg-reverse-workload-2", 60, every=0.5,
          what="the agent attached to the gateway")
    want = _payload(kube, platform.env, "route", 1)  # straight to the cluster
    before = served(platform)
    assert kube.text("exec", "web", "--", "echo", "routed") == "routed\n"
    after_exec = served(platform)
    assert _forwarded_sha(kube, "route") == want
    after = served(platform)
    assert after_exec["platform-servers"] > before["platform-servers"]  # exec: the servers
    assert after_exec["kg-servers-to-agents"] == before["kg-servers-to-agents"] + 1
    assert after["kg-servers-to-agents"] == after_exec["kg-servers-to-agents"]
    assert after["kg-reverse-workload-2"] > after_exec["kg-reverse-workload-2"]


@BOTH
def test_port_forward_of_100_mib_arrives_whole(kubes: dict[str, Kube], cluster: str,
                                               platform: Platform) -> None:
    """Its speed, and the agent's memory meanwhile, are bench/proxy_streams.py's figures."""
    kube = kubes[cluster]
    want = _payload(kube, platform.env, "big", 100)
    assert _forwarded_sha(kube, "big") == want


# -- cp ------------------------------------------------------------------------------------

@BOTH
def test_cp_both_ways_keeps_the_checksum(kubes: dict[str, Kube], cluster: str,
                                         tmp_path: Path) -> None:
    kube = kubes[cluster]
    local = tmp_path / "up.bin"
    local.write_bytes(os.urandom(5 << 20))
    kube.run("cp", str(local), f"{NS}/web:/tmp/up.bin")
    inside = kube.text("exec", "web", "--", "sha256sum", "/tmp/up.bin").split()[0]
    assert inside == hashlib.sha256(local.read_bytes()).hexdigest()
    kube.run("exec", "web", "--", "sh", "-c",
             "dd if=/dev/urandom of=/tmp/down.bin bs=1048576 count=4 2>/dev/null")
    back = tmp_path / "down.bin"
    kube.run("cp", f"{NS}/web:/tmp/down.bin", str(back))
    inside = kube.text("exec", "web", "--", "sha256sum", "/tmp/down.bin").split()[0]
    assert hashlib.sha256(back.read_bytes()).hexdigest() == inside


# -- many, and failures --------------------------------------------------------------------

@BOTH
def test_twenty_concurrent_execs(kubes: dict[str, Kube], cluster: str) -> None:
    kube = kubes[cluster]

    def one(i: int) -> subprocess.CompletedProcess[bytes]:
        return kube.run("exec", "web", "--", "sh", "-c", f"sleep 1; echo session-{i}",
                        check=False, timeout=90)

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, range(20)))
    failed = [(i, r.stderr.decode()) for i, r in enumerate(results) if r.returncode != 0]
    assert not failed
    assert [r.stdout.decode().strip() for r in results] == [f"session-{i}" for i in range(20)]


@BOTH
def test_a_user_without_exec_rights_gets_403(kubes: dict[str, Kube], cluster: str,
                                             platform: Platform) -> None:
    issued = issue_token(user="stream-viewer", groups=())
    platform.env.kubectl(GLOBAL, "apply", "-f", "-", stdin=json.dumps(issued.manifest))
    platform.env.kubectl(cluster, "-n", NS, "create", "rolebinding", "stream-viewer",
                         "--clusterrole=view", "--user=stream-viewer", check=False)
    kc = platform.proxy_kubeconfig(cluster, token=issued.token)
    viewer = Kube(platform, cluster, kc)
    assert "web" in viewer.text("get", "pods", "-o", "name")
    # `get` on the stream subresources is not enough: kubectl's upgrades are POSTs (the
    # reverse path carries an upgrade as a GET and restores the method; if it did not,
    # `get` would let this user in)
    platform.env.kubectl(cluster, "-n", NS, "create", "role", "stream-getter", "--verb=get",
                         "--resource=pods/exec,pods/attach,pods/portforward", check=False)
    platform.env.kubectl(cluster, "-n", NS, "create", "rolebinding", "stream-getter",
                         "--role=stream-getter", "--user=stream-viewer", check=False)
    for verb in (("exec", "web", "--", "id"), ("attach", "echo"),
                 ("port-forward", "pod/web", ":8080")):
        denied = viewer.run(*verb, check=False, timeout=30)
        assert denied.returncode != 0
        assert b"forbidden" in denied.stderr and b'User "stream-viewer"' in denied.stderr, (
            denied.stderr)
    # evaluated as the impersonated user by the workload cluster (`no` exits 1)
    cannot = viewer.run("auth", "can-i", "create", "pods/exec", check=False)
    assert (cannot.returncode, cannot.stdout.strip()) == (1, b"no")
    assert viewer.text("auth", "can-i", "get", "pods").strip() == "yes"


def _raw_upgrade(platform: Platform, path: str, token: str) -> tuple[int, dict[str, object]]:
    """An upgrade request straight to the platform API; the status and Status body."""
    plan = platform.env.plan
    ctx = ssl.create_default_context(cafile=str(plan.cluster_dir(GLOBAL) / "pki" / "ca.crt"))
    url = httpx.URL(api_url(plan, plan.cluster(GLOBAL)))
    assert url.host and url.port
    with socket.create_connection((url.host, url.port), timeout=30) as raw, \
            ctx.wrap_socket(raw, server_hostname=url.host) as tls:
        tls.sendall((f"POST {path} HTTP/1.1\r\nHost: {url.host}\r\n"
                     f"Authorization: Bearer {token}\r\nConnection: Upgrade\r\n"
                     "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
                     "Content-Length: 0\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := tls.recv(65536)):
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length and (chunk := tls.recv(65536)):
            body += chunk  # the gateway keeps the connection open: read what was promised
    return int(head.split()[1]), json.loads(body)


def test_refused_streams_are_answered_with_a_status(platform: Platform) -> None:
    admin = admin_token_file(platform.env.plan).read_text().strip()
    exec_path = f"/api/v1/namespaces/{NS}/pods/web/exec?command=id&stdout=true"
    code, status = _raw_upgrade(platform, f"/clusters/workload-1/k8s{exec_path}",
                                "kg_000000000000_wrong")
    assert code == 401 and status["kind"] == "Status" and status["code"] == 401
    code, status = _raw_upgrade(platform, f"/clusters/nowhere/k8s{exec_path}", admin)
    assert code == 404 and "cluster nowhere not found" in str(status["message"])


# -- the rest of kubectl's surface ---------------------------------------------------------

@BOTH
def test_discovery_explain_and_can_i(kubes: dict[str, Kube], cluster: str) -> None:
    kube = kubes[cluster]
    resources = kube.text("api-resources", "-o", "name").split()
    assert {"pods", "deployments.apps", "roles.rbac.authorization.k8s.io"} <= set(resources)
    assert {"v1", "apps/v1", "rbac.authorization.k8s.io/v1"} <= set(
        kube.text("api-versions").split())
    assert "containers\t<[]Object> -required-" in kube.text("explain", "pod.spec")
    assert kube.text("auth", "can-i", "create", "pods/exec").strip() == "yes"
    whoami = kube.text("auth", "can-i", "--list")
    assert "*.*" in whoami  # the admin's own RBAC, evaluated on the workload cluster


@BOTH
def test_server_side_apply_diff_and_dry_run(kubes: dict[str, Kube], cluster: str,
                                            platform: Platform) -> None:
    kube = kubes[cluster]

    def manifest(value: str) -> bytes:
        return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "ssa", "namespace": NS},
                               "data": {"k": value}}).encode()

    kube.run("apply", "--server-side", "--field-manager=streams-test", "-f", "-",
             stdin=manifest("one"))
    managers = _direct(platform.env, cluster, "get", "cm", "ssa", "-o",
                       "jsonpath={.metadata.managedFields[*].manager}")
    assert "streams-test" in managers.split()
    diff = kube.run("diff", "-f", "-", stdin=manifest("two"), check=False)
    assert diff.returncode == 1 and b"-  k: one" in diff.stdout and b"+  k: two" in diff.stdout
    kube.run("apply", "--server-side", "--field-manager=streams-test", "--dry-run=server",
             "-f", "-", stdin=manifest("three"))
    kube.run("delete", "cm", "ssa", "--dry-run=server")
    assert _direct(platform.env, cluster, "get", "cm", "ssa", "-o",
                   "jsonpath={.data.k}") == "one"


@BOTH
def test_chunked_lists(kubes: dict[str, Kube], cluster: str, platform: Platform) -> None:
    kube = kubes[cluster]
    items = [{"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": f"chunk-{i:02d}", "namespace": NS}} for i in range(25)]
    platform.env.kubectl(cluster, "apply", "-f", "-",
                         stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    done = kube.run("get", "configmaps", "--chunk-size=4", "-o", "name", "-v=6")
    names = [n for n in done.stdout.decode().split() if n.startswith("configmap/chunk-")]
    assert names == [f"configmap/chunk-{i:02d}" for i in range(25)]
    assert done.stderr.count(b"continue=") >= 6  # it really paged


@BOTH
def test_logs_follow(kubes: dict[str, Kube], cluster: str) -> None:
    proc = kubes[cluster].popen("logs", "-f", "--tail=1", "ticker")
    try:
        first = _read_until(proc, "tick-", timeout=30)
        n = int(re.findall(r"tick-(\d+)", first)[-1])
        later = _read_until(proc, f"tick-{n + 3}", timeout=30)  # written after we asked
        assert f"tick-{n + 3}" in first + later
    finally:
        proc.kill()
        proc.wait(timeout=10)


@BOTH
def test_protobuf_and_gzip(kubes: dict[str, Kube], cluster: str, platform: Platform) -> None:
    plan = platform.env.plan
    ca = ssl.create_default_context(cafile=str(plan.cluster_dir(GLOBAL) / "pki" / "ca.crt"))
    token = admin_token_file(plan).read_text().strip()
    base = f"{api_url(plan, plan.cluster(GLOBAL))}/clusters/{cluster}/k8s"
    with httpx.Client(base_url=base, verify=ca, trust_env=False, timeout=60,
                      headers={"Authorization": f"Bearer {token}"}) as http:
        pb = http.get(f"/api/v1/namespaces/{NS}/pods",
                      headers={"Accept": "application/vnd.kubernetes.protobuf"})
        assert pb.status_code == 200
        assert pb.headers["content-type"] == "application/vnd.kubernetes.protobuf"
        assert pb.content.startswith(b"k8s\x00")  # protobuf envelope magic
        # Big enough (> 128 KiB) for the apiserver to compress.
        with http.stream("GET", "/openapi/v2", headers={"Accept-Encoding": "gzip"}) as r:
            raw = b"".join(r.iter_raw())
        assert r.status_code == 200 and r.headers.get("content-encoding") == "gzip"
        assert json.loads(gzip.decompress(raw))["swagger"] == "2.0"
        with http.stream("GET", f"/api/v1/namespaces/{NS}/configmaps",
                         headers={"Accept-Encoding": "gzip"}) as r:
            body = b"".join(r.iter_bytes())
        assert r.status_code == 200 and json.loads(body)["kind"] == "ConfigMapList"


def test_watches_last_past_five_minutes(platform: Platform,
                                        long_watches: LongWatches) -> None:
    long_watches.check_lasted(platform)


def test_while_the_agent_is_detached_its_streams_take_the_tunnel(
        kubes: dict[str, Kube], platform: Platform, long_watches: LongWatches) -> None:
    """exec and port-forward of a registered cluster whose agent's HAProxy is away: the
    servers ask the gateway's port for the agent, hear "detached", and take the tunnel."""
    long_watches.check_lasted(platform)  # first: detaching the agent ends its watch too
    kube = kubes["workload-2"]
    want = _payload(kube, platform.env, "detached", 1)
    with agent_detached(platform):
        before = served(platform)
        assert kube.text("exec", "web", "--", "echo", "tunnel") == "tunnel\n"
        assert _forwarded_sha(kube, "detached") == want
        after = served(platform)
        assert after["platform-servers"] >= before["platform-servers"] + 2  # both: servers
        assert after["kg-reverse-workload-2"] <= before["kg-reverse-workload-2"] + 1


def test_killing_the_agent_ends_the_stream_and_the_next_exec_works(
        kubes: dict[str, Kube], platform: Platform, long_watches: LongWatches) -> None:
    long_watches.check_lasted(platform)  # first: killing the agent ends its watch too
    kube = kubes["workload-2"]
    proc = kube.popen("exec", "ticker", "--", "sh", "-c",
                      "while true; do echo alive; sleep 0.5; done")
    try:
        assert "alive" in _read_until(proc, "alive", timeout=30)
        os.kill(agent_pid(platform.env), 9)
        killed = time.monotonic()
        proc.wait(timeout=30)
        ended = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    print(f"exec ended {ended:.1f}s after the agent was killed: rc={proc.returncode} {err!r}")
    assert proc.returncode != 0
    assert "agent" in err and "workload-2" in err
    deadline = time.monotonic() + 120
    while True:
        again = kube.run("exec", "web", "--", "echo", "back", check=False)
        if again.returncode == 0:
            break
        assert time.monotonic() < deadline, again.stderr.decode()
        time.sleep(1)
    assert again.stdout == b"back\n"
