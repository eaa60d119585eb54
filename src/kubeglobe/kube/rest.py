"""Raw HTTP access to a cluster's API (for /version, the cluster proxy, streams).

lightkube covers typed resources; a `RestTarget` covers the bytes: the server URL, a
TLS context trusting only the cluster's CA, and the auth headers, from a kubeconfig.
"""

from __future__ import annotations

import base64
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from lightkube.config.kubeconfig import SingleConfig

from kubeglobe.files import write_atomic
from kubeglobe.kube.client import KubeconfigError


@dataclass(frozen=True)
class RestTarget:
    base_url: str
    ssl_context: ssl.SSLContext
    headers: dict[str, str] = field(default_factory=dict)

    def client(self, *, timeout: float | None = 10.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, verify=self.ssl_context, headers=self.headers,
            trust_env=False, timeout=timeout,
        )


def _read(path: str | None, data: str | None, base: Path | None) -> bytes | None:
    if data:
        return base64.b64decode(data)
    if path:
        p = Path(path)
        return (p if p.is_absolute() or base is None else base / p).read_bytes()
    return None


@dataclass(frozen=True)
class Credentials:
    """What a kubeconfig context says about reaching its cluster, files read."""

    server: str
    ca: bytes | None
    cert: bytes | None
    key: bytes | None
    token: str | None
    insecure: bool


def read_credentials(config: SingleConfig) -> Credentials:
    cluster, user = config.cluster, config.user
    fname = getattr(config, "fname", None)
    base = Path(fname).parent if fname else None
    try:
        ca = _read(cluster.certificate_auth, cluster.certificate_auth_data, base)
        cert = _read(user.client_cert, user.client_cert_data, base) if user else None
        key = _read(user.client_key, user.client_key_data, base) if user else None
    except (OSError, ValueError) as e:
        raise KubeconfigError(f"cannot read the kubeconfig's credentials: {e}") from e
    return Credentials(server=cluster.server.rstrip("/"), ca=ca, cert=cert, key=key,
                       token=(user.token or None) if user else None,
                       insecure=bool(cluster.insecure))


def load_client_pair(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """Make `ctx` present this client certificate (ssl.SSLError if unusable). The ssl
    module loads key pairs from files only: they exist, private, for the call alone."""
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        for f, content in ((cert_file, cert), (key_file, key)):
            write_atomic(f, content)
        ctx.load_cert_chain(str(cert_file), str(key_file))


def rest_target(config: SingleConfig) -> RestTarget:
    found = read_credentials(config)
    trusted = None if found.insecure or found.ca is None else found.ca.decode()
    ctx = ssl.create_default_context(cadata=trusted)  # None: the system's CAs
    if found.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if found.cert is not None and found.key is not None:
        try:
            load_client_pair(ctx, found.cert, found.key)
        except ssl.SSLError as e:
            raise KubeconfigError(f"the kubeconfig's client certificate is unusable: {e}") from e
    headers = {"Authorization": f"Bearer {found.token}"} if found.token else {}
    return RestTarget(base_url=found.server, ssl_context=ctx, headers=headers)
