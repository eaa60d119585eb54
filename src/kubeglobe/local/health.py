"""Health probes of the environment's parts, over the parts' own TLS.

Every probe passes the cluster's own CA and turns environment trust off: this machine
sets REQUESTS_CA_BUNDLE/SSL_CERT_FILE to the system bundle, which knows nothing of our
CAs. Probes answer a short text ("ok" or why not); they never raise.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from kubeglobe.certfiles import CertPair

PROBE_TIMEOUT = 2.0


def tls_context(*, ca: Path | None, client: CertPair | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca)) if ca else ssl.create_default_context()
    if ca is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if client is not None:
        ctx.load_cert_chain(str(client.cert), str(client.key))
    return ctx


def http_client(
    *, ca: Path | None, client: CertPair | None = None, timeout: float = PROBE_TIMEOUT
) -> httpx.Client:
    return httpx.Client(verify=tls_context(ca=ca, client=client), trust_env=False, timeout=timeout)


def probe_http(
    url: str, *, ca: Path | None = None, client: CertPair | None = None, expect: str = "ok"
) -> str:
    try:
        with http_client(ca=ca, client=client) as http:
            r = http.get(url)
    except (httpx.HTTPError, OSError, ssl.SSLError) as e:
        return f"unreachable: {type(e).__name__}: {e}"
    if r.status_code != 200:
        return f"HTTP {r.status_code}: {r.text.strip()[:120]}"
    if expect and expect not in r.text:
        return f"unexpected answer: {r.text.strip()[:120]}"
    return "ok"


def probe_tcp(host: str, port: int) -> str:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
            return "ok"
    except OSError as e:
        return f"unreachable: {e}"


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class NotHealthy(RuntimeError):
    pass


def wait_until(
    what: str, probe: Callable[[], str], *, timeout: float, alive: Callable[[], bool] | None = None,
    log: str | None = None, interval: float = 0.5,
) -> None:
    """Poll `probe` until it answers "ok"; fail early if `alive` says the process died."""
    deadline = time.monotonic() + timeout
    last = "not probed"
    while time.monotonic() < deadline:
        last = probe()
        if last == "ok":
            return
        if alive is not None and not alive():
            where = f"; its log: {log}" if log else ""
            raise NotHealthy(f"{what} exited while starting (last probe: {last}){where}")
        time.sleep(interval)
    where = f"; see {log}" if log else ""
    raise NotHealthy(f"{what} not healthy after {timeout:.0f}s: {last}{where}")
