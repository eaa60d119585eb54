"""Kubernetes `Ingress` objects of an instance's IngressClass as Rules (pure).

Each path of each rule becomes a Rule on the instance's HTTP Frontend, and on its HTTPS
one for a host its `tls` lists (served with that Frontend's certificate: one per
Frontend for now, the Ingress's `secretName` not yet). The Rules are named so that a
longer path is tried before a shorter one of the same Ingress, as Kubernetes wants the
longest match to win, and an Exact path before a Prefix of the same length
(ImplementationSpecific is read as Prefix). The default backend is a Rule matching
everything, tried last (priority 10). What cannot be a Rule (a port named instead of
numbered, a resource backend) is said by path, for the Ingress's events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from kubeglobe.api.alb import RuleSpec

INGRESS_PRIORITY = 5
DEFAULT_PRIORITY = 10


@dataclass(frozen=True)
class IngressRules:
    rules: dict[str, RuleSpec] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _backend(namespace: str, backend: dict[str, Any]) -> dict[str, Any]:
    service = backend.get("service")
    if not service:
        raise ValueError("only Service backends can be served (not a resource backend)")
    number = (service.get("port") or {}).get("number")
    if not number:
        raise ValueError(f"service {service.get('name')}: name its port by number "
                         "(port.number); a port name is not resolved")
    return {"namespace": namespace, "service": service.get("name"), "port": number}


def ingress_rules(ingress: dict[str, Any], *, http_frontend: str,
                  https_frontend: str | None = None) -> IngressRules:
    meta = ingress.get("metadata") or {}
    namespace, name = meta.get("namespace") or "default", meta.get("name") or ""
    spec = ingress.get("spec") or {}
    tls_hosts = {h for t in spec.get("tls") or [] for h in t.get("hosts") or []}
    out = IngressRules()

    def add(key: str, where: str, body: dict[str, Any], host: str | None) -> None:
        frontends = [http_frontend]
        if https_frontend is not None and host is not None and host in tls_hosts:
            frontends.append(https_frontend)
        for frontend in frontends:
            rule = f"ing-{namespace}-{name}-{key}-{frontend}"[:253].rstrip("-")
            try:
                out.rules[rule] = RuleSpec.model_validate({"frontend": frontend, **body})
            except ValidationError as e:
                out.problems.append(f"{where}: {e.errors()[0]['msg']}")

    for i, rule in enumerate(spec.get("rules") or []):
        host = rule.get("host")
        for j, path in enumerate((rule.get("http") or {}).get("paths") or []):
            value = path.get("path") or "/"
            exact = path.get("pathType") == "Exact"
            where = f"rule {i} path {value}"
            try:
                backend = _backend(namespace, path.get("backend") or {})
            except ValueError as e:
                out.problems.append(f"{where}: {e}")
                continue
            match: dict[str, Any] = {"path": {"type": "Exact" if exact else "Prefix",
                                              "value": value}}
            if host:
                match["hosts"] = [host]
            # longer first, Exact before Prefix: names sort in the order to try them
            key = f"{999 - min(len(value), 999):03d}{'a' if exact else 'b'}-{i}-{j}"
            add(key, where, {"priority": INGRESS_PRIORITY, "match": match,
                             "backends": [backend]}, host)
    default = spec.get("defaultBackend")
    if default:
        try:
            add("default", "defaultBackend", {"priority": DEFAULT_PRIORITY,
                                              "backends": [_backend(namespace, default)]},
                None)
        except ValueError as e:
            out.problems.append(f"defaultBackend: {e}")
    return out
