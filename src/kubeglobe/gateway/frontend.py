"""The gateway's fast path: HTTP rules for the platform frontend (pure).

A request for `/clusters/NAME/k8s/...` is answered by HAProxy itself when NAME has a
backend (an imported cluster, `clusters.map`) and the bearer token's SHA-256 is in
`identities.map` and not expired. HAProxy then drops the caller's credentials and any
impersonation headers they sent, impersonates the identity the map gives, and sends the
request to the cluster's backend. Anything else (register-mode clusters, unknown or bad
tokens, the rest of the platform API) goes to the API server replicas as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubeglobe.gateway.identities import MAX_GROUPS


@dataclass(frozen=True)
class GatewayFiles:
    """Where the gateway keeps what HAProxy reads."""

    directory: Path

    @property
    def identities(self) -> Path:
        return self.directory / "identities.map"

    @property
    def clusters(self) -> Path:
        return self.directory / "clusters.map"

    @property
    def backends(self) -> Path:
        return self.directory / "gateway.cfg"

    @property
    def certs(self) -> Path:
        return self.directory / "certs"

    @property
    def server_sockets(self) -> Path:
        """Where the API server replicas listen for this gateway (kept private: 0700)."""
        return self.directory / "servers"

    def server_socket(self, replica: int) -> Path:
        return self.server_sockets / f"server-{replica}.sock"

    def admin_socket(self) -> Path:
        return self.directory / "admin.sock"

    def master_socket(self) -> Path:
        return self.directory / "master.sock"


def fast_path_rules(files: GatewayFiles) -> str:
    """The rules, to be placed in the platform's `mode http` frontend."""
    identity = "var(txn.kg_id)"
    digest = ('req.hdr(authorization),regsub("^Bearer kg_[0-9a-f]{12}_",""),'
              f"sha2(256),hex,lower,map_str({files.identities})")
    rules = [
        "# kubeglobe gateway: cluster-proxy requests served here (gateway/frontend.py)",
        "acl kg_proxy_path path_reg ^/clusters/[^/]+/k8s(/|$)",
        f"http-request set-var(txn.kg_backend) path,field(3,/),map_str({files.clusters}) "
        "if kg_proxy_path",
        "acl kg_cluster var(txn.kg_backend) -m found",
        'acl kg_bearer req.hdr(authorization) -m beg "Bearer kg_"',
        f"http-request set-var(txn.kg_id) {digest} if kg_cluster kg_bearer",
        f"http-request set-var(txn.kg_expires) {identity},field(1,|) if {{ {identity} -m found }}",
        f"acl kg_known {identity} -m found",
        "acl kg_forever var(txn.kg_expires) -m int eq 0",
        "acl kg_unexpired date,neg,add(txn.kg_expires) gt 0",
        "http-request set-var(txn.kg_route) str(fast) "
        "if kg_cluster kg_known kg_forever || kg_cluster kg_known kg_unexpired",
        "acl kg_fast var(txn.kg_route) -m str fast",
        "http-request del-header Authorization if kg_fast",
        "http-request del-header (?i)^impersonate- -m reg if kg_fast",
        f"http-request set-header Impersonate-User %[{identity},field(2,|)] if kg_fast",
    ]
    for slot in range(3, 3 + MAX_GROUPS):
        group = f"{identity},field({slot},|)"
        rules.append(f"http-request add-header Impersonate-Group %[{group}] "
                     f"if kg_fast {{ {group} -m len gt 0 }}")
    rules.append("use_backend %[var(txn.kg_backend)] if kg_fast")
    return "".join(f"    {rule}\n" for rule in rules)
