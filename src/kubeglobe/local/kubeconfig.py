"""Kubeconfig files for local clusters: the admin one people use, and one per component.

Credentials are embedded (base64), so a kubeconfig keeps working when copied elsewhere
on the machine. Rendering is a pure function; `write_kubeconfig` is the only I/O.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from kubeglobe.certfiles import CertPair
from kubeglobe.files import write_atomic


def render_kubeconfig(
    *, cluster: str, server: str, ca_pem: bytes, user: str, cert_pem: bytes, key_pem: bytes
) -> dict[str, Any]:
    context = f"{user}@{cluster}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": base64.b64encode(cert_pem).decode(),
                    "client-key-data": base64.b64encode(key_pem).decode(),
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
    }


def write_kubeconfig(
    *, path: Path, cluster: str, server: str, ca: Path, user: str, client: CertPair
) -> Path:
    doc = render_kubeconfig(
        cluster=cluster,
        server=server,
        ca_pem=ca.read_bytes(),
        user=user,
        cert_pem=client.cert.read_bytes(),
        key_pem=client.key.read_bytes(),
    )
    write_atomic(path, yaml.safe_dump(doc, sort_keys=False).encode())
    return path
