"""The route table (kubeglobe/routing.py) and the gateway rules rendered from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeglobe.gateway.frontend import GatewayFiles, fast_path_rules, served_here
from kubeglobe.routing import Hop, ServedBy, Verb, route, server_hops, verb_of


def test_an_imported_cluster_is_served_by_the_gateway_straight_from_its_apiserver() -> None:
    for verb in Verb:
        for attached in (True, False):
            assert route(mode="import", verb=verb, attached=attached) == route(
                mode="import", verb=Verb.PLAIN, attached=False)
    assert route(mode="import", verb=Verb.STREAM, attached=False).hops == (Hop.APISERVER,)
    assert server_hops(mode="import", verb=Verb.STREAM) == (Hop.APISERVER,)


def test_a_registered_cluster_has_two_ways_the_agent_and_the_tunnel() -> None:
    used = {hop for verb in Verb for attached in (True, False)
            for hop in route(mode="register", verb=verb, attached=attached).hops}
    assert used == {Hop.AGENT, Hop.TUNNEL}
    # attached: the gateway sends plain requests and port-forwards down the agent's
    # connections; exec and attach go to the servers, which follow their SPDY frames
    assert route(mode="register", verb=Verb.PLAIN, attached=True).by is ServedBy.GATEWAY
    assert route(mode="register", verb=Verb.PORT_FORWARD, attached=True).hops == (Hop.AGENT,)
    stream = route(mode="register", verb=Verb.STREAM, attached=True)
    assert (stream.by, stream.hops) == (ServedBy.SERVERS, (Hop.AGENT, Hop.TUNNEL))
    # not attached: the servers, through the agent's tunnel, whatever the request
    for verb in Verb:
        away = route(mode="register", verb=verb, attached=False)
        assert (away.by, away.hops) == (ServedBy.SERVERS, (Hop.TUNNEL,))


def test_the_servers_try_the_agent_first_only_for_what_is_theirs_when_it_is_attached() -> None:
    assert server_hops(mode="register", verb=Verb.STREAM) == (Hop.AGENT, Hop.TUNNEL)
    assert server_hops(mode="register", verb=Verb.PLAIN) == (Hop.TUNNEL,)
    assert server_hops(mode="register", verb=Verb.PORT_FORWARD) == (Hop.TUNNEL,)


@pytest.mark.parametrize(("upgrade", "path", "verb"), [
    (False, "/api/v1/namespaces/a/pods/b/portforward", Verb.PLAIN),
    (True, "/api/v1/namespaces/a/pods/b/portforward", Verb.PORT_FORWARD),
    (True, "/api/v1/namespaces/a/pods/b/portforward/", Verb.STREAM),  # as HAProxy reads it
    (True, "/api/v1/namespaces/a/pods/b/exec", Verb.STREAM),
    (True, "/api/v1/namespaces/a/pods/b/attach", Verb.STREAM),
])
def test_the_kind_of_a_request_follows_its_upgrade_and_path(upgrade: bool, path: str,
                                                            verb: Verb) -> None:
    assert verb_of(upgrade=upgrade, path=path) is verb


def test_the_gateways_rules_are_the_route_table() -> None:
    """Imported clusters whatever the verb; attached registered clusters but for exec
    and attach; nothing for a registered cluster whose agent is away (it has no entry
    in the cluster map)."""
    assert served_here() == ["kg_fast kg_imported", "kg_fast kg_attached !kg_upgrade",
                             "kg_fast kg_attached kg_upgrade kg_portforward"]
    rules = fast_path_rules(GatewayFiles(Path("/gw")))
    assert ("use_backend %[var(txn.kg_backend)] if kg_fast kg_imported || kg_fast "
            "kg_attached !kg_upgrade || kg_fast kg_attached kg_upgrade kg_portforward") in rules
    assert "acl kg_imported var(txn.kg_backend) -m beg kg-cluster-" in rules
    assert "acl kg_attached var(txn.kg_backend) -m beg kg-reverse-" in rules
    assert "kg-tunnel" not in rules
