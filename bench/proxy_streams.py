"""Streams through the cluster proxy: port-forward throughput and exec latency vs direct.

Run: .venv/bin/python bench/proxy_streams.py [--state-dir DIR] [--mib N] [--rounds R]

For workload-1 (imported: the hub dials its apiserver) and workload-2 (registered:
through its agent's connections to the gateway, exec by way of the servers) it
measures, in one run and with kubectl itself (SPDY):

- port-forward throughput: MiB/s of an N MiB file served by busybox httpd in a pod,
  fetched through `kubectl port-forward` (median of R rounds);
- exec round trip: p50 of one line echoed by `cat` inside an open `kubectl exec -i`
  session, and p50 of a whole `kubectl exec -- true` (process start to exit);

each through the proxy and straight to the apiserver, the two taking turns sample by
sample (so the rest of the machine's load hits both alike), printed as ratios; and the
agent's RSS (its container's processes: the agent and the HAProxy it runs, summed,
sampled every 20 ms) before and at its peak during the register-mode transfers.
Targets: throughput >= 50% of direct through the tunnel, exec round trip p50 <= 2x
direct, agent memory bounded (a figure, printed).
Without --state-dir it starts (and afterwards removes) an environment of its own.
Traffic goes only to this machine's own environment; every loop is bounded.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from rich.console import Console
from rich.table import Table

from benchenv import bench_environment
from kubeglobe.local import environment
from kubeglobe.local.binaries import build_binaries
from kubeglobe.local.node import NodePaths
from kubeglobe.local.platform import admin_token_file, api_url
from kubeglobe.local.process import descendants, list_processes, shims_of
from kubeglobe.local.smoke import smoke_test
from kubeglobe.local.topology import GLOBAL, EnvironmentPlan

POD = "stream-bench"
IMAGE = "kubeglobe.local/busybox-httpd:1.0"
CLUSTERS = (("workload-1", "import"), ("workload-2", "register"))


@dataclass
class Figures:
    mib_s: float = 0.0
    echo_p50_ms: float = 0.0
    exec_p50_ms: float = 0.0


@dataclass
class Memory:
    before_mib: float = 0.0
    peak_mib: float = 0.0
    samples: list[float] = field(default_factory=list)


def proxy_kubeconfig(plan: EnvironmentPlan, cluster: str, out: Path) -> Path:
    ca = plan.cluster_dir(GLOBAL) / "pki" / "ca.crt"
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": cluster,
        "clusters": [{"name": cluster, "cluster": {
            "server": f"{api_url(plan, plan.cluster(GLOBAL))}/clusters/{cluster}/k8s",
            "certificate-authority": str(ca)}}],
        "users": [{"name": "admin", "user": {"token": admin_token_file(plan).read_text().strip()}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": "admin",
                                                   "namespace": "default"}}],
    }
    out.write_text(yaml.safe_dump(doc))
    return out


class Kubectl:
    def __init__(self, binary: str, kubeconfig: Path) -> None:
        self.argv = [binary, f"--kubeconfig={kubeconfig}"]

    def run(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run([*self.argv, *args], capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*self.argv, *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def prepare_pod(kubectl: Kubectl, mib: int) -> None:
    if POD not in kubectl.run("get", "pods", "-n", "default", "-o", "name"):
        kubectl.run("run", POD, "-n", "default", f"--image={IMAGE}",
                    "--image-pull-policy=IfNotPresent")
    kubectl.run("wait", "-n", "default", f"pod/{POD}", "--for=condition=Ready",
                "--timeout=120s")
    kubectl.run("exec", "-n", "default", POD, "--", "sh", "-c",
                f"[ -s /www/payload ] && [ $(wc -c < /www/payload) = {mib << 20} ] || "
                f"dd if=/dev/urandom of=/www/payload bs=1048576 count={mib} 2>/dev/null")


def forwarded_port(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            seen += os.read(proc.stdout.fileno(), 4096)
            found = re.search(rb"Forwarding from 127\.0\.0\.1:(\d+)", seen)
            if found:
                return int(found.group(1))
        if proc.poll() is not None:
            break
    raise RuntimeError(f"port-forward did not start: {seen!r}")


def download(port: int) -> float:
    """Seconds to fetch /payload whole through the forwarded port."""
    t0 = time.perf_counter()
    with httpx.stream("GET", f"http://127.0.0.1:{port}/payload", timeout=300,
                      trust_env=False) as r:
        r.raise_for_status()
        for _ in r.iter_raw(1 << 20):
            pass
    return time.perf_counter() - t0


def throughput(kubectls: list[Kubectl], mib: int, rounds: int) -> list[float]:
    """MiB/s through each kubectl's port-forward (median of `rounds`), the downloads
    taking turns so that whatever else the machine does hits every way alike."""
    procs = [k.popen("port-forward", "-n", "default", f"pod/{POD}", ":8080") for k in kubectls]
    try:
        ports = [forwarded_port(proc) for proc in procs]
        for port in ports:
            download(port)  # warm up
        seconds: list[list[float]] = [[] for _ in ports]
        for _ in range(rounds):
            for i, port in enumerate(ports):
                seconds[i].append(download(port))
        return [statistics.median(mib / t for t in taken) for taken in seconds]
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


def _echo_once(proc: subprocess.Popen[bytes], line: bytes) -> float:
    assert proc.stdin is not None and proc.stdout is not None
    t0 = time.perf_counter()
    proc.stdin.write(line)
    proc.stdin.flush()
    got = b""
    while not got.endswith(b"\n"):
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        if not ready:
            raise RuntimeError("no echo within 10 s")
        got += os.read(proc.stdout.fileno(), 4096)
    return time.perf_counter() - t0


def echo_p50(kubectls: list[Kubectl], lines: int) -> list[float]:
    """p50 ms of a line echoed by `cat` in an open `kubectl exec -i` session, one
    session per kubectl, the lines taking turns."""
    procs = [k.popen("exec", "-i", "-n", "default", POD, "--", "cat") for k in kubectls]
    samples: list[list[float]] = [[] for _ in procs]
    try:
        for i in range(lines + 5):
            for j, proc in enumerate(procs):
                taken = _echo_once(proc, f"ping {i}\n".encode())
                if i >= 5:  # the first lines warm the sessions
                    samples[j].append(taken)
    finally:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=10)
    return [statistics.median(taken) * 1000 for taken in samples]


def exec_p50(kubectls: list[Kubectl], n: int) -> list[float]:
    samples: list[list[float]] = [[] for _ in kubectls]
    for _ in range(n):
        for j, kubectl in enumerate(kubectls):
            t0 = time.perf_counter()
            kubectl.run("exec", "-n", "default", POD, "--", "true")
            samples[j].append(time.perf_counter() - t0)
    return [statistics.median(taken) * 1000 for taken in samples]


def agent_pid(plan: EnvironmentPlan, cluster: str) -> int:
    """The agent's process: below the shims of the workload node's containerd."""
    node = plan.cluster(cluster).nodes[0]
    procs = list_processes()
    below = descendants({p.pid for p in shims_of(str(NodePaths(plan, node).socket), procs)},
                        procs)
    agents = [p.pid for p in procs if p.pid in below and "kubeglobe agent" in p.cmdline]
    if len(agents) != 1:
        raise RuntimeError(f"expected one agent process, found {agents}")
    return agents[0]


def rss_mib(pid: int) -> float:
    """The RSS of `pid` and every process below it (the agent's HAProxy)."""
    total = 0.0
    for one in descendants({pid}, list_processes()):
        try:
            lines = Path(f"/proc/{one}/status").read_text().splitlines()
        except OSError:  # gone meanwhile
            continue
        total += next((int(line.split()[1]) / 1024 for line in lines
                       if line.startswith("VmRSS:")), 0.0)
    return total


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.memory = Memory(before_mib=rss_mib(pid))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.memory.samples.append(rss_mib(self.pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.memory.peak_mib = max(self.memory.samples, default=self.memory.before_mib)


def measure(direct: Kubectl, proxy: Kubectl, args: argparse.Namespace
            ) -> tuple[Figures, Figures]:
    """Direct and through the proxy, their samples interleaved."""
    both = [direct, proxy]
    mib_s = throughput(both, args.mib, args.rounds)
    echo = echo_p50(both, args.lines)
    whole = exec_p50(both, args.execs)
    d, p = (Figures(mib_s=mib_s[i], echo_p50_ms=echo[i], exec_p50_ms=whole[i]) for i in (0, 1))
    return d, p


def report(console: Console, cluster: str, mode: str, direct: Figures,
           proxy: Figures) -> None:
    table = Table(title=f"{cluster} ({mode})")
    for col in ("measure", "direct", "proxy", "ratio"):
        table.add_column(col)
    table.add_row("port-forward MiB/s", f"{direct.mib_s:.1f}", f"{proxy.mib_s:.1f}",
                  f"{proxy.mib_s / direct.mib_s:.0%}")
    table.add_row("exec echo round trip p50 ms", f"{direct.echo_p50_ms:.2f}",
                  f"{proxy.echo_p50_ms:.2f}", f"{proxy.echo_p50_ms / direct.echo_p50_ms:.2f}x")
    table.add_row("kubectl exec -- true p50 ms", f"{direct.exec_p50_ms:.0f}",
                  f"{proxy.exec_p50_ms:.0f}", f"{proxy.exec_p50_ms / direct.exec_p50_ms:.2f}x")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--mib", type=int, default=100, help="size of the forwarded file")
    parser.add_argument("--rounds", type=int, default=5, help="downloads per way")
    parser.add_argument("--lines", type=int, default=200, help="echoed lines per way")
    parser.add_argument("--execs", type=int, default=15, help="whole execs per way")
    args = parser.parse_args()
    console = Console()
    binary = build_binaries(progress=lambda _: None, check=smoke_test).path("kubectl")
    with bench_environment(args.state_dir, console) as (plan, _), \
            tempfile.TemporaryDirectory(prefix="kubeglobe-bench-") as tmp:
        memory = Memory()
        for cluster, mode in CLUSTERS:
            direct = Kubectl(binary, environment.admin_kubeconfig(plan, cluster))
            proxy = Kubectl(binary, proxy_kubeconfig(plan, cluster,
                                                     Path(tmp) / f"{cluster}.kubeconfig"))
            with console.status(f"{cluster}: pod with a {args.mib} MiB file"):
                prepare_pod(direct, args.mib)
            with console.status(f"{cluster}: direct and through the proxy, taking turns"):
                if mode == "register":
                    with RssSampler(agent_pid(plan, cluster)) as sampler:
                        d, p = measure(direct, proxy, args)
                    memory = sampler.memory
                else:
                    d, p = measure(direct, proxy, args)
            report(console, cluster, mode, d, p)
        console.print(f"agent RSS: {memory.before_mib:.1f} MiB before, "
                      f"{memory.peak_mib:.1f} MiB peak while {args.rounds + 1} x "
                      f"{args.mib} MiB went through its tunnel")
    console.print("targets: port-forward through the tunnel >= 50% of direct, exec round "
                  "trip p50 <= 2x direct, agent memory bounded")


if __name__ == "__main__":
    main()
