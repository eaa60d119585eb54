"""The ALB's resources: `Gateway` (an instance), `Frontend` (a port of it), `Rule`.

Cluster-scoped in the cluster the instance runs in, as ACP's ALB2, Frontend and Rule
are (acp-notes section 3): a Frontend names its Gateway, a Rule its Frontend, and a
Rule's backends are Services by namespace and name. What cannot be checked from one
object alone (a Service that does not exist, a Frontend of no Gateway) is the
operator's to say in the object's status; what can is refused here, with the fix.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from kubeglobe.api.cluster import Model

NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"  # an HTTP token
HOST = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
Protocol = Literal["HTTP", "HTTPS", "TCP"]
Algorithm = Literal["RoundRobin", "LeastConnections", "SourceHash"]
Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT",
                 "TRACE"]


def _regex(value: str, what: str) -> str:
    try:
        re.compile(value)
    except re.error as e:
        raise ValueError(f"{what} {value!r} is not a regular expression ({e}); escape "
                         "special characters such as . ( [ with a backslash") from e
    return value


class Condition(Model):
    """As Kubernetes' own conditions: `Accepted` or `Ready`, True or False, and why."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    lastTransitionTime: str | None = None


# -- Gateway -----------------------------------------------------------------------------

class GatewaySpec(Model):
    nodeSelector: dict[str, str] = Field(
        default_factory=dict, description="the nodes its HAProxy pods run on (ingress "
        "nodes, or the control-plane nodes)")
    replicas: int = Field(default=3, ge=1, le=64, description="pods, one per node at most")
    vip: str | None = Field(default=None, description="an IPv4 address keepalived holds on "
                            "one of the instance's nodes at a time (VRRP)")
    failback: bool = Field(default=False, description="the VIP goes back to the node it "
                           "first chose once that one is healthy again (else it stays)")
    virtualRouterId: int | None = Field(default=None, ge=1, le=255, description="VRRP's id, "
                                        "unique per network (else one from the name)")

    @field_validator("vip")
    @classmethod
    def _vip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            address = ipaddress.IPv4Address(value)
        except ValueError as e:
            raise ValueError(f"vip {value!r} is not an IPv4 address; give one such as "
                             "10.250.0.100 from the nodes' network") from e
        if address.is_unspecified or address.is_loopback or address.is_multicast:
            raise ValueError(f"vip {value} cannot be held by a node; give an unused address "
                             "of the nodes' network")
        return value


class GatewayStatus(Model):
    addresses: list[str] = Field(default_factory=list)
    readyReplicas: int = 0
    conditions: list[Condition] = Field(default_factory=list)


class GatewayResource(Model):
    spec: GatewaySpec = Field(default_factory=GatewaySpec)
    status: GatewayStatus | None = None


# -- Frontend ----------------------------------------------------------------------------

class CertificateRef(Model):
    """A `kubernetes.io/tls` Secret (tls.crt, tls.key)."""

    namespace: str = Field(min_length=1, max_length=63, pattern=NAME)
    name: str = Field(min_length=1, max_length=253)


class Backend(Model):
    """A Service's port, and its share of the traffic among a rule's backends."""

    namespace: str = Field(min_length=1, max_length=63, pattern=NAME)
    service: str = Field(min_length=1, max_length=63, pattern=NAME)
    port: int = Field(ge=1, le=65535)
    weight: int = Field(default=1, ge=0, le=256, description="HAProxy's weights, 0-256: "
                        "0 sends nothing")


class HealthCheck(Model):
    """How the instance checks each pod itself: one failing `fall` checks in a row gets
    no traffic, even while Kubernetes still lists it ready, until it passes `rise`."""

    type: Literal["TCP", "HTTP"] = "TCP"
    path: str = Field(default="/", pattern=r"^/[!-~]*$", description="HTTP: what is asked")
    expectStatus: int | None = Field(default=None, ge=100, le=599,
                                     description="HTTP: the status wanted (else 2xx or 3xx)")
    intervalSeconds: float = Field(default=2.0, ge=0.2, le=300)
    rise: int = Field(default=2, ge=1, le=10)
    fall: int = Field(default=2, ge=1, le=10)


class FrontendSpec(Model):
    gateway: str = Field(min_length=1, max_length=63, pattern=NAME)
    port: int = Field(ge=1, le=65535)
    protocol: Protocol = "HTTP"
    certificate: CertificateRef | None = Field(default=None, description="HTTPS: its "
                                               "certificate and key")
    defaultBackends: list[Backend] = Field(
        default_factory=list, description="where a request no rule matches goes (TCP: "
        "where every connection goes)")
    healthCheck: HealthCheck = Field(default_factory=HealthCheck)

    @model_validator(mode="after")
    def _protocol_needs_its_fields(self) -> FrontendSpec:
        if self.protocol == "HTTPS" and self.certificate is None:
            raise ValueError("an HTTPS frontend needs certificate (the namespace and name of "
                             "a kubernetes.io/tls Secret)")
        if self.protocol != "HTTPS" and self.certificate is not None:
            raise ValueError(f"a {self.protocol} frontend serves no certificate; drop "
                             "certificate or make it HTTPS")
        if self.protocol == "TCP" and not self.defaultBackends:
            raise ValueError("a TCP frontend has no rules to match: give defaultBackends")
        return self


class FrontendStatus(Model):
    conditions: list[Condition] = Field(default_factory=list)


class FrontendResource(Model):
    spec: FrontendSpec
    status: FrontendStatus | None = None


# -- Rule --------------------------------------------------------------------------------

class PathMatch(Model):
    type: Literal["Prefix", "Exact", "Regex"] = "Prefix"
    value: str = Field(min_length=1)

    @model_validator(mode="after")
    def _value(self) -> PathMatch:
        if self.type == "Regex":
            _regex(self.value, "path regex")
        elif not self.value.startswith("/"):
            raise ValueError(f"path {self.value!r} must start with / (or be of type Regex)")
        return self


class HeaderMatch(Model):
    name: str = Field(min_length=1, max_length=256, pattern=HEADER_NAME)
    type: Literal["Exact", "Prefix", "Regex", "Exists"] = "Exact"
    value: str = ""

    @model_validator(mode="after")
    def _value(self) -> HeaderMatch:
        if self.type == "Regex":
            _regex(self.value, f"header {self.name} regex")
        elif self.type != "Exists" and not self.value:
            raise ValueError(f"header {self.name}: give value, or type Exists to match any")
        return self


class QueryMatch(Model):
    name: str = Field(min_length=1, max_length=256)
    value: str


class Match(Model):
    """Every field given must match (AND); within a list, any entry (OR) for hosts,
    methods and source ranges, every entry for headers and query parameters."""

    hosts: list[str] = Field(default_factory=list, description="exact, or *.example.com")
    path: PathMatch | None = None
    headers: list[HeaderMatch] = Field(default_factory=list)
    methods: list[Method] = Field(default_factory=list)
    query: list[QueryMatch] = Field(default_factory=list)
    sourceRanges: list[str] = Field(default_factory=list, description="CIDRs")

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if not re.match(HOST, host) or len(host) > 253:
                raise ValueError(f"host {host!r} is not a DNS name; write it lower-case, "
                                 "as app.example.com or *.example.com")
        return hosts

    @field_validator("sourceRanges")
    @classmethod
    def _ranges(cls, ranges: list[str]) -> list[str]:
        for cidr in ranges:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as e:
                raise ValueError(f"source range {cidr!r} is not a CIDR; write it as "
                                 "10.0.0.0/8 or 192.168.1.7/32") from e
        return ranges


class Redirect(Model):
    scheme: Literal["http", "https"] | None = None
    host: str | None = Field(default=None, pattern=HOST)
    port: int | None = Field(default=None, ge=1, le=65535)
    path: str | None = Field(default=None, pattern=r"^/")
    code: Literal[301, 302, 303, 307, 308] = 302

    @model_validator(mode="after")
    def _changes_something(self) -> Redirect:
        if self.scheme is None and self.host is None and self.port is None and \
                self.path is None:
            raise ValueError("a redirect changes nothing: give scheme, host, port or path")
        return self


class Rewrite(Model):
    """What the backend sees instead: the matched path prefix replaced, the Host set."""

    pathPrefix: str | None = Field(default=None, pattern=r"^/")
    host: str | None = Field(default=None, pattern=HOST)


class Affinity(Model):
    type: Literal["Cookie", "SourceIP"]
    cookieName: str = Field(default="KGSESSION", min_length=1, max_length=64,
                            pattern=HEADER_NAME)


class RuleSpec(Model):
    frontend: str = Field(min_length=1, max_length=253, pattern=NAME)
    priority: int = Field(default=5, ge=0, le=10, description="0 is tried first")
    match: Match = Field(default_factory=Match)
    backends: list[Backend] = Field(default_factory=list)
    redirect: Redirect | None = None
    rewrite: Rewrite | None = None
    algorithm: Algorithm = "RoundRobin"
    affinity: Affinity | None = None
    healthCheck: HealthCheck = Field(default_factory=HealthCheck)

    @model_validator(mode="after")
    def _one_action(self) -> RuleSpec:
        if bool(self.backends) == (self.redirect is not None):
            raise ValueError("a rule either forwards (backends) or redirects (redirect): "
                             "give exactly one of them")
        if self.redirect is not None and (self.rewrite or self.affinity):
            raise ValueError("a redirecting rule sends nothing to a backend: drop rewrite "
                             "and affinity")
        if self.backends and not any(b.weight for b in self.backends):
            raise ValueError("every backend has weight 0, so the rule could send nowhere: "
                             "give one a weight above 0")
        if self.path_is_regex and self.rewrite and self.rewrite.pathPrefix:
            raise ValueError("rewrite.pathPrefix replaces a matched prefix: match a path of "
                             "type Prefix, or drop it")
        return self

    @property
    def path_is_regex(self) -> bool:
        return self.match.path is not None and self.match.path.type == "Regex"


class RuleStatus(Model):
    conditions: list[Condition] = Field(default_factory=list)


class RuleResource(Model):
    spec: RuleSpec
    status: RuleStatus | None = None
