"""The gateway's fast path: HTTP rules for the platform frontend (pure).

A request for `/clusters/NAME/k8s/...` is answered by HAProxy itself when NAME has a
backend (`clusters.map`: imported clusters, and registered ones whose agents take raw
connections) and the bearer token's SHA-256 is in `identities.map` and not expired
(for a registered cluster: and it is no connection upgrade). The cluster's backend then
drops the caller's credentials and any impersonation headers they sent, impersonates
the identity the map gives, and sends the request on (rules from `impersonation_rules`,
rendered by `backends.py`). Anything else (unknown or bad tokens, clusters without a
backend, the rest of the platform API) goes to the API server replicas, which handle
every case.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubeglobe.gateway.identities import MAX_GROUPS
from kubeglobe.gateway.sockets import replica_directory


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

    def cluster_sockets(self, replica: int) -> Path:
        """Where replica `replica` opens a socket per registered cluster it holds."""
        return replica_directory(self.server_sockets, replica)

    def agents_socket(self) -> Path:
        """Where the API servers reach registered clusters' agents through HAProxy."""
        return self.server_sockets / "agents.sock"

    def admin_socket(self) -> Path:
        return self.directory / "admin.sock"

    def master_socket(self) -> Path:
        return self.directory / "master.sock"


TUNNEL_PREFIX = "kg-tunnel-"  # registered clusters' backends (imported: kg-cluster-)
REVERSE_PREFIX = "kg-reverse-"  # theirs too, while their agents are attached (reverse.py)
IDENTITY = "var(txn.kg_id)"  # expiry|user|group|... of the caller, from identities.map


def fast_path_rules(files: GatewayFiles) -> str:
    """The rules, to be placed in the platform's `mode http` frontend: who is calling,
    and which cluster backend serves them (each backend rewrites the request itself,
    `backends.py`)."""
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
        f"http-request set-var(txn.kg_expires) {IDENTITY},field(1,|) if {{ {IDENTITY} -m found }}",
        f"acl kg_known {IDENTITY} -m found",
        "acl kg_forever var(txn.kg_expires) -m int eq 0",
        "acl kg_unexpired date,neg,add(txn.kg_expires) gt 0",
        "http-request set-var(txn.kg_route) str(fast) "
        "if kg_cluster kg_known kg_forever || kg_cluster kg_known kg_unexpired",
        "acl kg_fast var(txn.kg_route) -m str fast",
        # A registered cluster's exec and attach stay with the servers: they read its
        # SPDY frames, so losing the agent mid-stream ends them with a message. Its
        # port-forward goes down the agent's own connections when it is attached
        # (kubectl says "lost connection to pod" by itself).
        f"acl kg_registered var(txn.kg_backend) -m beg {TUNNEL_PREFIX} {REVERSE_PREFIX}",
        f"acl kg_reverse var(txn.kg_backend) -m beg {REVERSE_PREFIX}",
        "acl kg_upgrade req.hdr(upgrade) -m found",
        "acl kg_portforward path_end /portforward",
        "use_backend %[var(txn.kg_backend)] "
        "if kg_fast !kg_registered || kg_fast !kg_upgrade || kg_fast kg_reverse kg_portforward",
    ]
    return "".join(f"    {rule}\n" for rule in rules)


def impersonation_rules(acl: str | None = None, *, drop_always: bool = True) -> list[str]:
    """A backend's rules making the request the caller's, as the cluster sees it: the
    caller's credentials and any impersonation they sent dropped, the identity from the
    map impersonated (the backend strips the `/clusters/NAME/k8s` prefix). With `acl`,
    the rules that rewrite apply only when that ACL of the backend holds; the caller's
    impersonation headers are dropped always (no path honours them), so a request that
    reaches a server unrewritten can never carry them, unless `drop_always` is False
    (for requests the API servers send, which carry the impersonation they computed)."""
    guard = f" if {acl}" if acl else ""
    rules = [
        "http-request del-header (?i)^impersonate- -m reg" + ("" if drop_always else guard),
        f"http-request del-header Authorization{guard}",
        f"http-request set-header Impersonate-User %[{IDENTITY},field(2,|)]{guard}",
    ]
    for slot in range(3, 3 + MAX_GROUPS):
        group = f"{IDENTITY},field({slot},|)"
        rules.append(f"http-request add-header Impersonate-Group %[{group}] "
                     f"if {acl + ' ' if acl else ''}{{ {group} -m len gt 0 }}")
    return rules
