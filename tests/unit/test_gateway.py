"""The gateway's pure parts: which tokens HAProxy serves, its backends, its config."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from kubeglobe.gateway.backends import Unservable, cluster_backend, render
from kubeglobe.gateway.identities import (
    LEASE_SECONDS,
    MAX_GROUPS,
    REFRESH_SECONDS,
    StoredToken,
    identity_map,
    lease_end,
)
from kubeglobe.gateway.reverse import (
    AgentPort,
    ServersPort,
    render_reverse,
    reverse_backend,
    routes,
)
from kubeglobe.gateway.runtime import parse_map
from kubeglobe.hub.tokens import TokenRecord
from kubeglobe.kube.rest import Credentials

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


def test_a_registered_cluster_is_in_the_map_only_while_its_agent_is_attached() -> None:
    imported = {"workload-1": "kg-cluster-workload-1"}
    reverse = {"kg-reverse-workload-2", "kg-reverse-workload-3"}
    assert routes(imported, reverse, attached_now=set()) == imported
    assert routes(imported, reverse, attached_now={"kg-reverse-workload-2"}) == {
        **imported, "workload-2": "kg-reverse-workload-2"}
    # connections HAProxy reports for a backend that is not rendered (any more) count not
    assert routes(imported, reverse, attached_now={"kg-reverse-gone"}) == imported


def test_the_api_servers_reach_attached_agents_only_with_a_servers_certificate() -> None:
    port = AgentPort(bind="10.0.0.1:17", serving_pem=Path("/gw/s.pem"),
                     agents_ca=Path("/pki/agents-ca.crt"))
    servers = ServersPort(bind="10.0.0.1:18", serving_pem=Path("/gw/s.pem"),
                          servers_ca=Path("/pki/servers-ca.crt"))
    reverse = reverse_backend("workload-2", "0f5c8a3e-1b2d-4c6e-9a7b-3d2e1f0a9b8c")
    assert reverse is not None
    lines = render_reverse(port, [reverse], servers).splitlines()
    assert ("    bind 10.0.0.1:18 ssl crt /gw/s.pem ca-file /pki/servers-ca.crt verify required "
            "alpn http/1.1") in lines
    assert not [line for line in lines if "unix@" in line]  # TCP only: any host will do
