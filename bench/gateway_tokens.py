"""How soon the gateway stops a token: revoked (its Secret deleted) and expired.

Run: .venv/bin/python bench/gateway_tokens.py [--state-dir DIR] [--rounds N]

Each round issues a platform-admin token, waits until HAProxy itself serves it on the
fast path (imported workload-1), then either deletes its Secret (revocation: the
gateway's watch sees it and swaps the identity map) or lets its expiry pass (HAProxy
compares the expiry itself, no sync pass needed), and measures the seconds until the
gateway answers 401, polling every 20 ms. Target: within 1 s for both (the platform's
promise that a disabled user's tokens stop within a second), printed as p50 and max.
Traffic stays on this machine; every loop is bounded by time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import ssl
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from benchenv import bench_environment
from kubeglobe.hub.tokens import IssuedToken, issue_token
from kubeglobe.local import environment
from kubeglobe.local.binaries import find_binaries
from kubeglobe.local.platform import api_url
from kubeglobe.local.topology import GLOBAL, EnvironmentPlan

PODS = "/clusters/workload-1/k8s/api/v1/namespaces/default/pods"
POLL = 0.02
LIMIT = 10.0


def kubectl(plan: EnvironmentPlan, *args: str, stdin: str | None = None) -> None:
    binaries = find_binaries()
    assert binaries is not None, "run `kubeglobe local build` first"
    subprocess.run([binaries.path("kubectl"),
                    f"--kubeconfig={environment.admin_kubeconfig(plan, GLOBAL)}", *args],
                   input=stdin, text=True, capture_output=True, check=True, timeout=60)


def until(check: Callable[[], bool], limit: float = LIMIT) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if check():
            return time.monotonic() - started
        time.sleep(POLL)
    raise TimeoutError(f"not within {limit:.0f}s")


def one_round(plan: EnvironmentPlan, http: httpx.Client, *, expire: bool) -> float:
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5) if expire else None
    issued: IssuedToken = issue_token(user="bench", groups=("kubeglobe:platform-admins",),
                                      expires=expires)
    kubectl(plan, "apply", "-f", "-", stdin=json.dumps(issued.manifest))
    auth = {"Authorization": f"Bearer {issued.token}"}
    until(lambda: http.get(PODS, headers=auth).status_code == 200)
    if expires is None:
        kubectl(plan, "-n", "kubeglobe-system", "delete", "secret", issued.secret_name)
        start = time.monotonic()
    else:
        time.sleep(max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds()))
        start = time.monotonic()
    until(lambda: http.get(PODS, headers=auth).status_code == 401)
    if expire:
        kubectl(plan, "-n", "kubeglobe-system", "delete", "secret", issued.secret_name)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    console = Console()
    with bench_environment(args.state_dir, console) as (plan, _):
        ca = plan.cluster_dir(GLOBAL) / "pki" / "ca.crt"
        with httpx.Client(base_url=api_url(plan, plan.cluster(GLOBAL)), trust_env=False,
                          verify=ssl.create_default_context(cafile=str(ca)), timeout=10) as http:
            table = Table(title="seconds until the gateway answers 401")
            for name in ("p50", "max", "rounds"):
                table.add_column(name, justify="right")
            table.add_column("case", justify="left")
            for case, expire in (("revoked", False), ("expired", True)):
                with console.status(f"{case} tokens") as line:
                    taken = []
                    for i in range(args.rounds):
                        line.update(f"{case} tokens: round {i + 1}/{args.rounds}")
                        taken.append(one_round(plan, http, expire=expire))
                table.add_row(f"{statistics.median(taken):.3f}", f"{max(taken):.3f}",
                              str(len(taken)), case)
            console.print(table)


if __name__ == "__main__":
    main()
