"""Which way a cluster-proxy request goes: the one table both the gateway and the servers
follow (pure).

A caller the gateway knows (its token is in the identity map) is routed by three facts:
the cluster's mode, the kind of request, and, for a registered cluster, whether its agent
is attached to the gateway (its HAProxy holds reverse-HTTP connections). The gateway's
HAProxy rules are rendered from `route` (`gateway/frontend.py`); the servers try the hops
`server_hops` gives, in order. There are two ways to a registered cluster and only two:

- `Hop.AGENT`: down the connections the agent's HAProxy keeps to the gateway (reverse
  HTTP, no Python on the path). The gateway takes it itself for plain requests and
  port-forwards; the servers take it for exec and attach, whose SPDY frames they follow
  so that a stream broken mid-way ends with a message kubectl prints.
- `Hop.TUNNEL`: the agent's WebSocket tunnel to the API server replica the request is at
  (an agent holds one to every replica, so any replica can serve; one that holds none
  answers with a Status saying so).

An imported cluster has one way, `Hop.APISERVER`: TLS straight to its apiserver.

| mode     | request      | attached | served by | hops          |
|----------|--------------|----------|-----------|---------------|
| import   | any          | -        | gateway   | apiserver     |
| register | plain        | yes      | gateway   | agent         |
| register | port-forward | yes      | gateway   | agent         |
| register | exec/attach  | yes      | servers   | agent, tunnel |
| register | any          | no       | servers   | tunnel        |

Callers the gateway does not know, and the rest of the platform API, go to the servers,
which authenticate every request themselves.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kubeglobe.api.cluster import Mode


class Verb(enum.Enum):
    """The kinds of request that are routed differently."""

    PLAIN = "plain"  # no upgrade: get, list, watch, logs, apply, ...
    PORT_FORWARD = "port-forward"  # an upgrade of the portforward subresource
    STREAM = "stream"  # an upgrade whose SPDY streams the servers follow: exec, attach


class Hop(enum.Enum):
    APISERVER = "apiserver"  # TLS to the cluster's apiserver (imported clusters)
    AGENT = "agent"  # the agent's reverse-HTTP connections to the gateway
    TUNNEL = "tunnel"  # the agent's WebSocket tunnel to this API server replica


class ServedBy(enum.Enum):
    GATEWAY = "gateway"
    SERVERS = "servers"


@dataclass(frozen=True)
class Route:
    by: ServedBy
    hops: tuple[Hop, ...]  # tried in order: a hop that is not there passes to the next


def verb_of(*, upgrade: bool, path: str) -> Verb:
    """The kind of a request, from whether it asks for an upgrade and its path."""
    if not upgrade:
        return Verb.PLAIN
    # exactly as the gateway's ACL (`path_end /portforward`) reads it
    return Verb.PORT_FORWARD if path.endswith("/portforward") else Verb.STREAM


def route(*, mode: Mode, verb: Verb, attached: bool) -> Route:
    """The route of a request from a caller the gateway knows."""
    if mode == "import":
        return Route(ServedBy.GATEWAY, (Hop.APISERVER,))
    if not attached:
        return Route(ServedBy.SERVERS, (Hop.TUNNEL,))
    if verb is Verb.STREAM:
        return Route(ServedBy.SERVERS, (Hop.AGENT, Hop.TUNNEL))
    return Route(ServedBy.GATEWAY, (Hop.AGENT,))


def server_hops(*, mode: Mode, verb: Verb) -> tuple[Hop, ...]:
    """The hops a server tries for a request that reached it. It cannot see whether the
    agent is attached; the gateway's agent hop answers "detached" when it is not. So: the
    attached route's hops when that route is the servers' own, else the detached route's
    (the gateway sent the request here because the agent is away, or because it did not
    know the caller)."""
    attached = route(mode=mode, verb=verb, attached=True)
    if attached.by is ServedBy.SERVERS:
        return attached.hops
    return route(mode=mode, verb=verb, attached=False).hops
