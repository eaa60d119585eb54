"""The gateway's fast path: HTTP rules for the platform frontend (pure).

A request for `/clusters/NAME/k8s/...` whose bearer token's SHA-256 is in
`identities.map`, unexpired, is answered by HAProxy itself when the route table
(`kubeglobe/routing.py`) says the gateway serves it, through the backend NAME's entry in
`clusters.map` names. Anything else goes to the API server replicas, which handle every
case.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubeglobe.api.cluster import Mode
from kubeglobe.gateway.identities import MAX_GROUPS
from kubeglobe.routing import Hop, ServedBy, Verb, route


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
    def base(self) -> Path:
        return self.directory / "haproxy.cfg"

    @property
    def backends(self) -> Path:
        return self.directory / "gateway.cfg"

    @property
    def certs(self) -> Path:
        return self.directory / "certs"

    def admin_socket(self) -> Path:
        return self.directory / "admin.sock"

    def master_socket(self) -> Path:
        return self.directory / "master.sock"


IMPORTED_PREFIX = "kg-cluster-"  # imported clusters' backends
REVERSE_PREFIX = "kg-reverse-"  # registered clusters' backends, mapped while attached
IDENTITY = "var(txn.kg_id)"  # expiry|user|group|... of the caller, from identities.map

# What the cluster map's entry says of the cluster, as an ACL, and which cases of the
# route table that is; a registered cluster whose agent is away has no entry.
_STATES: tuple[tuple[str | None, Mode, bool, Hop], ...] = (
    ("kg_imported", "import", True, Hop.APISERVER),
    ("kg_attached", "register", True, Hop.AGENT),
    (None, "register", False, Hop.TUNNEL),
)
_VERBS = {Verb.PLAIN: "!kg_upgrade", Verb.PORT_FORWARD: "kg_upgrade kg_portforward",
          Verb.STREAM: "kg_upgrade !kg_portforward"}


def served_here() -> list[str]:
    """The conditions (HAProxy `||` terms) under which the gateway serves a request
    itself, rendered from the route table."""
    terms = []
    for acl, mode, attached, backend_hop in _STATES:
        verbs = [v for v in Verb
                 if route(mode=mode, verb=v, attached=attached).by is ServedBy.GATEWAY]
        if not verbs:
            continue
        if acl is None:
            raise ValueError(f"the route table sends {mode} clusters (attached={attached}) "
                             "to the gateway, which has no backend for them")
        for verb in verbs:
            if route(mode=mode, verb=verb, attached=attached).hops != (backend_hop,):
                raise ValueError(f"the gateway's {acl} backend is {backend_hop.value}, "
                                 f"but the route table routes {verb.value} otherwise")
        if len(verbs) == len(Verb):
            terms.append(f"kg_fast {acl}")
        else:
            terms += [f"kg_fast {acl} {_VERBS[v]}" for v in verbs]
    return terms


def fast_path_rules(files: GatewayFiles) -> str:
    """The rules, to be placed in the platform's `mode http` frontend: who is calling,
    and which cluster backend serves them (each backend rewrites the request itself,
    `backends.py`, `reverse.py`)."""
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
        f"acl kg_imported var(txn.kg_backend) -m beg {IMPORTED_PREFIX}",
        f"acl kg_attached var(txn.kg_backend) -m beg {REVERSE_PREFIX}",
        "acl kg_upgrade req.hdr(upgrade) -m found",
        "acl kg_portforward path_end /portforward",
        "# the route table (kubeglobe/routing.py): what the gateway serves itself",
        "use_backend %[var(txn.kg_backend)] if " + " || ".join(served_here() or ["FALSE"]),
    ]
    return "".join(f"    {rule}\n" for rule in rules)


def impersonation_rules(acl: str | None = None, *, drop_always: bool = True) -> list[str]:
    """A backend's rules making the request the caller's: their credentials and any
    impersonation they sent dropped, the identity from the map impersonated. With `acl`,
    the rewriting rules apply only when that ACL holds; the caller's impersonation
    headers are dropped always, so an unrewritten request never carries them, unless
    `drop_always` is False (the API servers' requests carry the impersonation they
    computed)."""
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
