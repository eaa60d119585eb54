"""The gateway's pure parts: which tokens HAProxy serves, its backends, its config."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import tempfile
from pathlib import Path

import pytest

from kubeglobe.gateway.backends import Unservable, cluster_backend, render, tunnel_backend
from kubeglobe.gateway.frontend import GatewayFiles
from kubeglobe.gateway.identities import (
    LEASE_SECONDS,
    MAX_GROUPS,
    REFRESH_SECONDS,
    StoredToken,
    identity_map,
    lease_end,
)
from kubeglobe.gateway.reverse import AgentPort, render_reverse, reverse_backend
from kubeglobe.gateway.runtime import parse_map
from kubeglobe.gateway.sockets import (
    UNIX_PATH_MAX,
    cluster_socket,
    replica_directories,
    replica_directory,
)
from kubeglobe.hub.tokens import TokenRecord
from kubeglobe.kube.rest import Credentials
from kubeglobe.local.haproxy_build import require_haproxy
from kubeglobe.local.loadbalancer import render_haproxy_config
from kubeglobe.local.pki import CertPair, ensure_ca
from kubeglobe.local.topology import EnvironmentPlan, plan_environment

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def stored(user: str, *, kind: str = "api", groups: tuple[str, ...] = (),
           expires: dt.datetime | None = None, digest: str | None = None) -> StoredToken:
    return StoredToken(
        digest=digest or hashlib.sha256(f"{user}{kind}{expires}".encode()).hexdigest(),
        record=TokenRecord(user=user, groups=groups, kind=kind,  # type: ignore[arg-type]
                           name="", expires=expires))


def test_the_map_holds_exactly_the_tokens_the_api_servers_accept() -> None:
    admin = stored("admin", kind="system", groups=("kubeglobe:platform-admins",))
    alice = stored("alice", kind="session", expires=NOW + dt.timedelta(hours=1))
    bob = stored("bob")  # disabled
    ghost = stored("ghost")  # no such User
    stale = stored("alice", expires=NOW - dt.timedelta(seconds=1))
    wanted = identity_map([admin, alice, bob, ghost, stale], enabled_users={"alice"},
                          groups={"devs": ["alice", "carol"], "ops": ["alice"]}, now=NOW)
    until = lease_end(NOW)  # neither token ends sooner than the map's lease
    assert wanted == {admin.digest: f"{until}|admin|kubeglobe:platform-admins",
                      alice.digest: f"{until}|alice|devs|ops"}


def test_entries_lapse_with_the_map_lease_or_the_token_whichever_comes_first() -> None:
    soon = NOW + dt.timedelta(seconds=5)
    short = stored("s", kind="system", expires=soon)
    assert identity_map([short], enabled_users=set(), groups={}, now=NOW) == {
        short.digest: f"{int(soon.timestamp())}|s"}
    epoch = int(NOW.timestamp())
    start = dt.datetime.fromtimestamp(epoch - epoch % REFRESH_SECONDS, dt.UTC)
    window = {lease_end(start + dt.timedelta(seconds=s)) for s in range(REFRESH_SECONDS)}
    assert window == {int(start.timestamp()) + LEASE_SECONDS}  # the map changes once a window
    later = lease_end(start + dt.timedelta(seconds=REFRESH_SECONDS))
    assert later == int(start.timestamp()) + REFRESH_SECONDS + LEASE_SECONDS


def test_identities_the_map_cannot_carry_are_left_to_the_slow_path() -> None:
    odd = stored("eve|admin", kind="system")
    spaced = stored("sys", kind="system", groups=("a group",))
    many = stored("m", kind="system", groups=tuple(f"g{i}" for i in range(MAX_GROUPS + 1)))
    fits = stored("n", kind="system", groups=tuple(f"g{i}" for i in range(MAX_GROUPS)))
    bad_digest = stored("x", kind="system", digest="not-a-digest")
    wanted = identity_map([odd, spaced, many, fits, bad_digest], enabled_users=set(),
                          groups={}, now=NOW)
    assert list(wanted) == [fits.digest]


def creds(**changes: object) -> Credentials:
    base: dict[str, object] = dict(server="https://10.250.0.1:20026", ca=b"CA", cert=b"CERT\n",
                                   key=b"KEY", token=None, insecure=False)
    base.update(changes)
    return Credentials(**base)  # type: ignore[arg-type]


def test_a_backend_carries_the_clusters_own_credential_and_strips_the_prefix() -> None:
    b = cluster_backend("workload-1", creds())
    assert (b.host, b.port, b.client_pem) == ("10.250.0.1", 20026, b"CERT\nKEY")
    out = render([b], Path("/gw/certs"))
    assert out.clusters == {"workload-1": "kg-cluster-workload-1"}
    assert out.files == {Path("/gw/certs/workload-1-ca.pem"): b"CA",
                         Path("/gw/certs/workload-1-client.pem"): b"CERT\nKEY"}
    assert "replace-path ^/clusters/[^/]+/k8s/?(.*)$ /\\1" in out.config
    assert "verify required ca-file /gw/certs/workload-1-ca.pem" in out.config
    assert "sni" not in out.config  # an address: the chain is checked, not a name

    named = render([cluster_backend("w", creds(server="https://api.example:6443/base",
                                                cert=None, key=None, token="abc.def"))],
                   Path("/gw"))
    assert "sni str(api.example) verifyhost api.example" in named.config
    assert 'set-header Authorization "Bearer abc.def"' in named.config
    assert "$ /base/\\1" in named.config


@pytest.mark.parametrize(("changes", "reason"), [
    ({"insecure": True}, "no CA"),
    ({"ca": None}, "no CA"),
    ({"server": "http://10.0.0.1:80"}, "not an https URL"),
    ({"server": "https://[::1]:6443"}, "IPv6"),
    ({"cert": None, "key": None}, "neither a client certificate nor a token"),
    ({"cert": None, "key": None, "token": 'x" y'}, "token has characters"),
])
def test_kubeconfigs_the_gateway_cannot_use_say_why(changes: dict[str, object],
                                                     reason: str) -> None:
    with pytest.raises(Unservable, match=reason):
        cluster_backend("w", creds(**changes))


def test_runtime_map_listings_parse() -> None:
    listing = "0x55ab1758d130 abc 0|alice|g1\n0x55ab1758d140 def 12|bob\n\n"
    assert parse_map(listing) == {"abc": "0|alice|g1", "def": "12|bob"}


def test_haproxy_accepts_the_whole_gateway_configuration(tmp_path: Path) -> None:
    env = plan_environment(state_dir=tmp_path, slot=1, workload_clusters=0)
    with tempfile.TemporaryDirectory(prefix="gw", dir="/tmp") as short:  # socket paths fit
        check_whole_configuration(tmp_path, env, GatewayFiles(Path(short)))


def check_whole_configuration(tmp_path: Path, env: EnvironmentPlan, files: GatewayFiles) -> None:
    files.certs.mkdir(parents=True)
    ca = ensure_ca(pair=CertPair(cert=tmp_path / "ca.crt", key=tmp_path / "ca.key"),
                   common_name="t")
    pem = tmp_path / "serving.pem"
    pem.write_bytes(ca.pair.cert.read_bytes() + ca.pair.key.read_bytes())
    main = tmp_path / "haproxy.cfg"
    main.write_text(render_haproxy_config(env=env, cluster=env.clusters[0],
                                          ca_file=str(pem), gateway=files, serving_pem=pem))
    sockets = {i: (cluster_socket(files.cluster_sockets(i), "workload-2"), files.server_socket(i))
               for i in (0, 1)}
    out = render([cluster_backend("workload-1", creds(ca=pem.read_bytes(),
                                                      cert=pem.read_bytes(), key=b""))],
                 files.certs, [tunnel_backend("workload-2", sockets)])
    for path, content in out.files.items():
        path.write_bytes(content)
    agents = AgentPort(bind="127.0.0.1:20017", serving_pem=pem, agents_ca=ca.pair.cert)
    reverse = reverse_backend("workload-2", "0f5c8a3e-1b2d-4c6e-9a7b-3d2e1f0a9b8c")
    assert reverse is not None
    agent_side = render_reverse(agents, [reverse], files.agents_socket())
    files.backends.write_text(out.config + "\n" + agent_side)
    for m in (files.identities, files.clusters):
        m.write_text("")
    done = subprocess.run([str(require_haproxy()), "-c", "-f", str(main),
                           "-f", str(files.backends)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_registered_cluster_goes_to_the_replicas_sockets_or_else_as_it_came() -> None:
    files = GatewayFiles(Path("/gw"))
    out = render([], files.certs, [tunnel_backend("workload-2", {
        i: (cluster_socket(files.cluster_sockets(i), "workload-2"), files.server_socket(i))
        for i in (0, 1)})])
    assert out.clusters == {"workload-2": "kg-tunnel-workload-2"}
    lines = out.config.splitlines()
    assert "    server tunnel-1 unix@/gw/servers/server-1.d/workload-2.sock check inter 1s " \
           "fall 1 rise 1 pool-purge-delay 30s" in lines
    assert "    server platform-0 unix@/gw/servers/server-0.sock backup" in lines
    assert "    acl kg_tunnel srv_is_up(kg-tunnel-workload-2/tunnel-0)" in lines
    # Every rewrite waits for a live tunnel socket: the backups get the request as it
    # came, but for the caller's impersonation headers, which are dropped on every path
    # (a request reaching a tunnel socket unrewritten in a race cannot carry them).
    rewrites = [line for line in lines if "http-request" in line and "impersonate-" not in line]
    assert rewrites and all(" if kg_tunnel" in line for line in rewrites)
    assert "    http-request del-header Authorization if kg_tunnel" in lines
    assert "    http-request del-header (?i)^impersonate- -m reg" in lines
    assert out.files == {}  # no credential: the agent's certificate authenticates
    # HAProxy's own errors are Kubernetes Status objects naming the cluster.
    error = next(line for line in lines if "http-error status 502" in line)
    status = json.loads(error.split("string '", 1)[1].rstrip("'"))
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 502, "InternalError")
    assert "cluster workload-2 did not answer through its agent" in status["message"]


def test_a_registered_cluster_without_usable_sockets_says_why() -> None:
    with pytest.raises(Unservable, match="no API server replica"):
        tunnel_backend("w", {})
    with pytest.raises(Unservable, match="too long"):
        tunnel_backend("w", {0: (None, Path("/gw/servers/server-0.sock"))})


def test_replicas_and_gateway_agree_on_socket_names(tmp_path: Path) -> None:
    servers = tmp_path / "servers"
    for i in (1, 0):
        replica_directory(servers, i).mkdir(parents=True)
    (servers / "server-0.sock").touch()
    (servers / "server-x.d").mkdir()
    assert replica_directories(servers) == {0: servers / "server-0.d",
                                            1: servers / "server-1.d"}
    assert replica_directories(tmp_path / "absent") == {}
    assert cluster_socket(servers / "server-0.d", "w") == servers / "server-0.d" / "w.sock"
    assert cluster_socket(servers, "x" * UNIX_PATH_MAX) is None
