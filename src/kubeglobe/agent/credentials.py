"""Where the agent keeps its bootstrap token, credential and apiserver certificate.

In a cluster: the Secret its manifest created (`kubeglobe-agent`); outside one
(development): a directory of files. The bootstrap token is one-time: it is deleted
as soon as a credential is saved.
"""

from __future__ import annotations

import base64
from pathlib import Path

from lightkube import AsyncClient
from lightkube.resources.core_v1 import Secret

from kubeglobe.agent.apiserver_certificate import ClientCertificate
from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.files import write_atomic
from kubeglobe.kube.secrets import b64, secret_text

AGENT_SECRET = "kubeglobe-agent"
CERT_KEY, KEY_KEY = "apiserver-client.crt", "apiserver-client.key"


def _text(data: dict[str, str] | None, key: str) -> str | None:
    return (secret_text(data, key) or "").strip() or None


class SecretStore:
    def __init__(self, client: AsyncClient, *, name: str = AGENT_SECRET,
                 namespace: str = SYSTEM_NAMESPACE) -> None:
        self._client = client
        self._name = name
        self._namespace = namespace

    async def load(self) -> tuple[str | None, str | None]:
        secret = await self._client.get(Secret, self._name, namespace=self._namespace)
        return _text(secret.data, "bootstrap-token"), _text(secret.data, "credential")

    async def save_credential(self, credential: str | None) -> None:
        data: dict[str, str | None] = {"credential": None}
        if credential is not None:
            data = {"credential": b64(credential),
                    "bootstrap-token": None}
        await self._client.patch(Secret, self._name, {"data": data},
                                 namespace=self._namespace)

    async def load_certificate(self) -> ClientCertificate | None:
        secret = await self._client.get(Secret, self._name, namespace=self._namespace)
        cert, key = _text(secret.data, CERT_KEY), _text(secret.data, KEY_KEY)
        if cert is None or key is None:
            return None
        return ClientCertificate(cert_pem=cert.encode(), key_pem=key.encode())

    async def save_certificate(self, found: ClientCertificate) -> None:
        data = {CERT_KEY: base64.b64encode(found.cert_pem).decode(),
                KEY_KEY: base64.b64encode(found.key_pem).decode()}
        await self._client.patch(Secret, self._name, {"data": data},
                                 namespace=self._namespace)


class FileStore:
    def __init__(self, directory: Path) -> None:
        self._dir = directory

    async def load(self) -> tuple[str | None, str | None]:
        def read(name: str) -> str | None:
            path = self._dir / name
            return path.read_text().strip() if path.exists() else None

        return read("bootstrap-token"), read("credential")

    async def save_credential(self, credential: str | None) -> None:
        path = self._dir / "credential"
        if credential is None:
            path.unlink(missing_ok=True)
            return
        write_atomic(path, credential.encode())
        (self._dir / "bootstrap-token").unlink(missing_ok=True)

    async def load_certificate(self) -> ClientCertificate | None:
        cert, key = self._dir / CERT_KEY, self._dir / KEY_KEY
        if not (cert.exists() and key.exists()):
            return None
        return ClientCertificate(cert_pem=cert.read_bytes(), key_pem=key.read_bytes())

    async def save_certificate(self, found: ClientCertificate) -> None:
        write_atomic(self._dir / KEY_KEY, found.key_pem)
        write_atomic(self._dir / CERT_KEY, found.cert_pem)
