"""Registered clusters served by HAProxy alone: the agents' reverse HTTP (pure).

A registered cluster's agent runs an HAProxy of its own that dials the gateway's agent
port with the client certificate the platform signed (`hub/agent_certificates.py`)
and offers that connection as a server: HAProxy (3.0, `rhttp@`, experimental) attaches
it to the cluster's `kg-reverse-NAME` backend and sends requests down it over HTTP/2.
The agent's HAProxy sends them on to its apiserver with the agent's apiserver client
certificate, which may only impersonate. No Python process touches a request, and the
path has one hop fewer than the tunnel's.

Attaching is by the certificate's O, the Cluster's UID, never by its name alone: a
cluster registered again under an old name gets a new UID, so a certificate from its
past life attaches nowhere. Connections of no current cluster are refused.

HAProxy cannot tell from a rule whether a reverse server holds a connection, and a
request sent there without one fails at once. So the cluster map keeps pointing at the
tunnel backend (`kg-tunnel-NAME`, the replicas' byte path, always right), and the
gateway points the cluster's map entry at `kg-reverse-NAME` at runtime only while
HAProxy reports connections for it (`routes`); a reload or a lost agent goes back to
the tunnel. A request that loses that race gets a `Status` naming the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubeglobe.gateway.backends import status_errors
from kubeglobe.gateway.frontend import REVERSE_PREFIX, impersonation_rules

SERVER = "agent"
AGENTS_FRONTEND = "kg-agents"
SERVERS_FRONTEND = "kg-servers-to-agents"
NONE_ATTACHED = "kg-no-agent"
_FROM_SERVERS = "kg_from_servers"
METHOD_HEADER = "X-KubeGlobe-Method"  # an upgrade's method, across HTTP/2 (see below)
DETACHED_HEADER = "X-KubeGlobe-Agent-Detached"  # on the 503 of an agent not attached
_UID_CHARS = frozenset("0123456789abcdef-")


@dataclass(frozen=True)
class AgentPort:
    """Where the gateway takes agents' connections, and what it proves itself with."""

    bind: str  # HOST:PORT
    serving_pem: Path  # the gateway's certificate then key
    agents_ca: Path  # the CA that signs agents' certificates


@dataclass(frozen=True)
class ReverseBackend:
    cluster: str
    uid: str

    @property
    def name(self) -> str:
        return f"{REVERSE_PREFIX}{self.cluster}"


def reverse_backend(cluster: str, uid: str) -> ReverseBackend | None:
    """The reverse backend of registered `cluster`, or None when its UID is not a
    Kubernetes UID (it goes into HAProxy's rules as it is)."""
    if not uid or not set(uid) <= _UID_CHARS:
        return None
    return ReverseBackend(cluster=cluster, uid=uid)


def render_reverse(port: AgentPort, backends: list[ReverseBackend], servers_socket: Path) -> str:
    """The agents' frontend, the API servers' way to the agents (`servers_socket`), and
    one backend per registered cluster."""
    lines = [f"frontend {AGENTS_FRONTEND}", "    mode http",
             f"    bind {port.bind} ssl crt {port.serving_pem} ca-file {port.agents_ca} "
             "verify required alpn h2"]
    for b in backends:
        lines.append(f"    tcp-request session attach-srv {b.name}/{SERVER} "
                     f"if {{ ssl_c_s_dn(O) -m str {b.uid} }}")
    known = " ".join(b.uid for b in backends)
    lines.append(f"    tcp-request session reject unless {{ ssl_c_s_dn(O) -m str {known} }}"
                 if backends else "    tcp-request session reject")
    sections = ["\n".join(lines) + "\n"]
    # The API servers' exec and attach: they authenticated the caller and impersonate
    # themselves; here only the cluster is chosen. A cluster without a reverse backend
    # (just registered, not rendered yet) is "detached" too: the servers take the tunnel.
    sections.append("\n".join([
        f"frontend {SERVERS_FRONTEND}", "    mode http",
        f"    bind unix@{servers_socket} mode 600",
        f"    use_backend {REVERSE_PREFIX}%[path,field(3,/)] "
        "if { path_reg ^/clusters/[^/]+/k8s/ }",
        f"    default_backend {NONE_ATTACHED}"]) + "\n")
    sections.append("\n".join([
        f"backend {NONE_ATTACHED}", "    mode http",
        f"    http-request return status 503 hdr {DETACHED_HEADER} yes"]) + "\n")
    for b in backends:
        lines = [f"backend {b.name}", "    mode http", "    http-reuse always",
                 f"    acl {_FROM_SERVERS} fe_name {SERVERS_FRONTEND}"]
        errors = status_errors({
            502: f"cluster {b.cluster} did not answer through its agent: the agent could "
                 "not reach its apiserver, or its connection broke during the request",
            503: f"the agent of cluster {b.cluster} is not connected to the gateway just "
                 "now; retry",
            504: f"cluster {b.cluster} did not answer through its agent in time"})
        # the API servers read this to take the tunnel instead
        lines += [f"{line} hdr {DETACHED_HEADER} yes" if " 503 " in line else line
                  for line in errors]
        lines += [f"    {rule}" for rule in impersonation_rules(f"!{_FROM_SERVERS}",
                                                                drop_always=False)]
        lines += [
            "    http-request replace-path ^/clusters/[^/]+/k8s/?(.*)$ /\\1",
            # HTTP/2 carries an upgrade as a CONNECT, which the agent's HAProxy turns
            # into a GET: the method travels beside it and the agent restores it.
            f"    http-request del-header {METHOD_HEADER}",
            f"    http-request set-header {METHOD_HEADER} %[method] "
            "if { req.hdr(upgrade) -m found }",
            f"    server {SERVER} rhttp@"]
        sections.append("\n".join(lines) + "\n")
    return "\n".join(sections)


def attached(listing: str) -> set[str]:
    """The backends whose reverse server holds a connection, from `show servers conn`
    (`bkname/svname ... used_cur used_max need_est unsafe_nb safe_nb idle_lim
    idle_cur ...`): used or idle, either counts."""
    found = set()
    for row in listing.splitlines():
        fields = row.split()
        if len(fields) < 13 or row.startswith("#") or "/" not in fields[0]:
            continue
        backend, server = fields[0].split("/", 1)
        if not backend.startswith(REVERSE_PREFIX) or server != SERVER:
            continue
        try:
            used, idle = int(fields[6]), int(fields[12])
        except ValueError:
            continue
        if used > 0 or idle > 0:
            found.add(backend)
    return found


def routes(clusters: dict[str, str], reverse: set[str], attached_now: set[str]) -> dict[str, str]:
    """The cluster map as it should be now: a registered cluster whose agent is attached
    is served by its reverse backend, the rest as rendered."""
    wanted = dict(clusters)
    for cluster in clusters:
        name = f"{REVERSE_PREFIX}{cluster}"
        if name in reverse and name in attached_now:
            wanted[cluster] = name
    return wanted
