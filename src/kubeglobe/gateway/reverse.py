"""Registered clusters served by HAProxy alone: the agents' reverse HTTP (pure).

An agent's own HAProxy dials the gateway's agent port and offers that connection as
the server of its cluster's `kg-reverse-NAME` backend (HAProxy 3.0, `rhttp@`). It is
attached by the certificate's O, the Cluster's UID, never by name: a cluster registered
again gets a new UID, so a certificate from its past life attaches nowhere.

HAProxy cannot tell from a rule whether a reverse server holds a connection, and a
request sent there without one fails at once. So the cluster map as written has no
registered cluster; the gateway maps one at runtime only while HAProxy reports its
connections (`routes`). The API servers reach attached agents (for exec and attach)
through `kg-servers-to-agents`, over TCP with mutual TLS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubeglobe.api.meta import DETACHED_HEADER, METHOD_HEADER
from kubeglobe.gateway.frontend import REVERSE_PREFIX, impersonation_rules
from kubeglobe.haproxy import status_errors

SERVER = "agent"
AGENTS_FRONTEND = "kg-agents"
SERVERS_FRONTEND = "kg-servers-to-agents"
NONE_ATTACHED = "kg-no-agent"
_FROM_SERVERS = "kg_from_servers"
_UID_CHARS = frozenset("0123456789abcdef-")


@dataclass(frozen=True)
class AgentPort:
    """Where the gateway takes agents' connections, and what it proves itself with."""

    bind: str  # HOST:PORT
    serving_pem: Path  # the gateway's certificate then key
    agents_ca: Path  # the CA that signs agents' certificates


@dataclass(frozen=True)
class ServersPort:
    """Where the API servers reach attached agents, and whom the gateway lets in."""

    bind: str  # HOST:PORT
    serving_pem: Path  # the gateway's certificate then key
    servers_ca: Path  # the CA that signs the servers' client certificates (only those)


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


def render_reverse(port: AgentPort, backends: list[ReverseBackend], servers: ServersPort) -> str:
    """The agents' frontend, the API servers' way to the agents, and one backend per
    registered cluster."""
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
        f"    bind {servers.bind} ssl crt {servers.serving_pem} ca-file {servers.servers_ca} "
        "verify required alpn http/1.1",
        f"    use_backend {REVERSE_PREFIX}%[path,field(3,/)] "
        "if { path_reg ^/clusters/[^/]+/k8s/ }",
        f"    default_backend {NONE_ATTACHED}"]) + "\n")
    sections.append("\n".join([
        f"backend {NONE_ATTACHED}", "    mode http",
        f"    http-request return status 503 hdr {DETACHED_HEADER} yes"]) + "\n")
    for b in backends:
        lines = [f"backend {b.name}", "    mode http", "    http-reuse always",
                 # a request sent down a connection its agent was just closing (the
                 # agent's HAProxy replaced) goes again down another; only a read is
                 # sent again once sent, the rest only when nothing went out
                 "    retries 3", "    retry-on conn-failure empty-response",
                 "    http-request disable-l7-retry if ! { method GET HEAD OPTIONS }",
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
    """The cluster map as it should be now: the imported clusters as rendered, and each
    registered cluster whose agent is attached, to its reverse backend."""
    wanted = dict(clusters)
    for name in reverse & attached_now:
        wanted[name.removeprefix(REVERSE_PREFIX)] = name
    return wanted
