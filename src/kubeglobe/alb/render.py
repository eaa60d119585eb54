"""An ALB instance's HAProxy configuration from its Frontends, Rules and endpoints (pure).

One `frontend` per Frontend; each Rule is a `use_backend` tried in priority order (0
first, then by name), its match rendered as ACLs (fields ANDed; hosts, methods and
source ranges ORed within); each Rule has a backend of its own (a redirect too, so a
redirect keeps its place in the order). A Rule that cannot be served here (its
Frontend is not of this instance, or is TCP) is left out with the reason, for the
operator to write into its status; the others are served as if it did not exist. A
Service's endpoints become servers checked as the Rule says (TCP by default); a
Service with none answers 503.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kubeglobe.api.alb import (
    Backend,
    FrontendSpec,
    HeaderMatch,
    HealthCheck,
    Match,
    RuleSpec,
)

MAX_WEIGHT = 256


@dataclass(frozen=True)
class Endpoint:
    name: str  # its pod's
    ip: str
    port: int


ServiceKey = tuple[str, str, int]  # namespace, service, port


@dataclass(frozen=True)
class Rendered:
    config: str
    refused: dict[str, str] = field(default_factory=dict)  # rule -> why it is not served
    certificates: tuple[tuple[str, str], ...] = ()  # (namespace, name) of TLS Secrets used


def quoted(value: str) -> str:
    """`value` as one HAProxy word: in single quotes (no escape, no variable within),
    a single quote of its own closed, escaped and opened again, as a shell does."""
    if any(ord(c) < 32 for c in value):
        raise ValueError(f"{value!r} holds a control character")
    return "'" + value.replace("'", "'\\''") + "'"


def _header_acl(acl: str, h: HeaderMatch) -> str:
    fetch = f"req.hdr({h.name})"
    if h.type == "Exists":
        return f"    acl {acl} {fetch} -m found"
    flag = {"Exact": "str", "Prefix": "beg", "Regex": "reg"}[h.type]
    return f"    acl {acl} {fetch} -m {flag} {quoted(h.value)}"


def match_acls(prefix: str, match: Match) -> tuple[list[str], list[str]]:
    """The ACL lines of `match` and the names a condition ANDs (none: match all)."""
    lines: list[str] = []
    names: list[str] = []

    def acl(suffix: str, *rows: str) -> None:
        name = f"{prefix}_{suffix}"
        lines.extend(f"    acl {name} {row}" for row in rows)  # one name, rows ORed
        names.append(name)

    if match.hosts:
        host = "req.hdr(host),field(1,:),lower"
        exact = [h for h in match.hosts if not h.startswith("*.")]
        wild = [h[1:] for h in match.hosts if h.startswith("*.")]
        acl("host", *([f"{host} -m str {' '.join(exact)}"] if exact else []),
            *([f"{host} -m end {' '.join(wild)}"] if wild else []))
    if match.path is not None:
        p = match.path
        if p.type == "Exact":
            acl("path", f"path -m str {quoted(p.value)}")
        elif p.type == "Regex":
            acl("path", f"path -m reg {quoted(p.value)}")
        elif p.value.endswith("/"):
            acl("path", f"path -m beg {quoted(p.value)}")
        else:  # a prefix of whole segments, as Kubernetes' Prefix: /cart, /cart/x, not /carts
            acl("path", f"path -m str {quoted(p.value)}", f"path -m beg {quoted(p.value + '/')}")
    for i, h in enumerate(match.headers):
        name = f"{prefix}_hdr{i}"
        lines.append(_header_acl(name, h))
        names.append(name)
    if match.methods:
        acl("method", "method " + " ".join(match.methods))
    for i, q in enumerate(match.query):
        acl(f"q{i}", f"url_param({q.name}) -m str {quoted(q.value)}")
    if match.sourceRanges:
        acl("src", "src " + " ".join(match.sourceRanges))
    return lines, names


def _checks(check: HealthCheck) -> tuple[list[str], str]:
    """The backend's lines for `check`, and what each server line adds."""
    lines = []
    if check.type == "HTTP":
        lines.append(f"    option httpchk GET {check.path}")
        lines.append(f"    http-check expect status {check.expectStatus}"
                     if check.expectStatus is not None else
                     "    http-check expect rstatus ^[23]")
    every = max(1, round(check.intervalSeconds * 1000))
    return lines, f"check inter {every}ms fall {check.fall} rise {check.rise}"


def _servers(backends: list[Backend], endpoints: dict[ServiceKey, list[Endpoint]],
             *, cookie: bool, check: HealthCheck) -> list[str]:
    """Every endpoint of every backend, checked; a Service's weight is spread over its
    endpoints, so weights split traffic between Services, not pods."""
    pods = [(b, endpoints.get((b.namespace, b.service, b.port), [])) for b in backends
            if b.weight > 0]
    shares = [b.weight / len(found) for b, found in pods if found]
    top = max(shares, default=1.0)
    lines, each = _checks(check)
    for b, found in pods:
        weight = max(1, round(b.weight / max(1, len(found)) * MAX_WEIGHT / top))
        for e in found:
            name = f"{b.namespace}.{b.service}.{e.name}"
            extra = f" cookie {name}" if cookie else ""
            lines.append(f"    server {name} {e.ip}:{e.port} weight {weight}{extra} {each}")
    return lines


def _redirect(rule: RuleSpec) -> str:
    r = rule.redirect
    assert r is not None
    scheme = r.scheme or "%[ssl_fc,iif(https,http)]"
    host = r.host or "%[req.hdr(host),field(1,:)]"
    port = f":{r.port}" if r.port is not None else ""
    path = r.path.replace("%", "%%") if r.path is not None else "%[url]"
    return f"    http-request redirect location {quoted(scheme + '://' + host + port + path)} " \
           f"code {r.code}"


def _rule_backend(name: str, rule: RuleSpec,
                  endpoints: dict[ServiceKey, list[Endpoint]]) -> list[str]:
    lines = [f"backend rule-{name}", "    mode http"]
    if rule.redirect is not None:
        return [*lines, _redirect(rule)]
    lines.append("    balance " + {"RoundRobin": "roundrobin", "LeastConnections": "leastconn",
                                   "SourceHash": "source"}[rule.algorithm])
    cookie = rule.affinity is not None and rule.affinity.type == "Cookie"
    if rule.affinity is not None and cookie:
        lines.append(f"    cookie {rule.affinity.cookieName} insert indirect nocache")
    elif rule.affinity is not None:  # SourceIP: a client stays on its server
        lines += ["    stick-table type ip size 100k expire 30m", "    stick on src"]
    rewrite = rule.rewrite
    if rewrite is not None and rewrite.pathPrefix is not None:
        matched = rule.match.path.value if rule.match.path is not None else "/"
        pattern = "^" + re.escape(matched.rstrip("/")) + "(.*)$"
        replacement = rewrite.pathPrefix.rstrip("/") + "\\1"
        lines.append(f"    http-request replace-path {quoted(pattern)} {quoted(replacement)}")
    if rewrite is not None and rewrite.host is not None:
        lines.append(f"    http-request set-header Host {quoted(rewrite.host)}")
    return lines + _servers(rule.backends, endpoints, cookie=cookie,
                            check=rule.healthCheck)


def render_instance(*, frontends: dict[str, FrontendSpec], rules: dict[str, RuleSpec],
                    endpoints: dict[ServiceKey, list[Endpoint]], certs_dir: str) -> Rendered:
    """The frontends and backends of one instance (its Frontends by name, the Rules of
    any Frontend by name); a rule of no frontend here is refused, the rest served."""
    sections: list[str] = []
    refused: dict[str, str] = {}
    certificates: set[tuple[str, str]] = set()
    order = sorted(rules.items(), key=lambda kv: (kv[1].priority, kv[0]))
    for name, rule in order:
        if rule.frontend not in frontends:
            refused[name] = f"frontend {rule.frontend} is not a Frontend of this gateway"
        elif frontends[rule.frontend].protocol == "TCP":
            refused[name] = (f"frontend {rule.frontend} is TCP: its connections go to its "
                             "defaultBackends, no rule matches them")
    for ft_name, ft in sorted(frontends.items()):
        tcp = ft.protocol == "TCP"
        lines = [f"frontend ft-{ft_name}", f"    mode {'tcp' if tcp else 'http'}"]
        bind = f"    bind :{ft.port}"
        if ft.certificate is not None:
            certificates.add((ft.certificate.namespace, ft.certificate.name))
            bind += f" ssl crt {certs_dir}/{ft.certificate.namespace}.{ft.certificate.name}.pem"
        lines.append(bind)
        backends: list[str] = []
        for name, rule in order:
            if rule.frontend != ft_name or name in refused:
                continue
            acls, names = match_acls(f"r_{name.replace('-', '_')}", rule.match)
            lines += acls
            lines.append(f"    use_backend rule-{name}" + (f" if {' '.join(names)}"
                                                           if names else ""))
            backends.append("\n".join(_rule_backend(name, rule, endpoints)))
        default = f"ft-{ft_name}-default"
        lines.append(f"    default_backend {default}")
        backends.append("\n".join(
            [f"backend {default}", f"    mode {'tcp' if tcp else 'http'}", "    balance roundrobin",
             *([] if tcp or ft.defaultBackends else
               ["    http-request return status 404 content-type text/plain "
                f"string {quoted('no rule of this gateway matches the request')}"]),
             *_servers(ft.defaultBackends, endpoints, cookie=False,
                       check=ft.healthCheck)]))
        sections.append("\n".join(lines))
        sections += backends
    return Rendered(config="\n\n".join(sections) + "\n", refused=refused,
                    certificates=tuple(sorted(certificates)))
