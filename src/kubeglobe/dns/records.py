"""The cluster's DNS zone, computed from its Services and Endpoints (pure).

Names follow Kubernetes' DNS specification for Services:
- `SVC.NS.svc.DOMAIN`: A, the ClusterIP; for a headless Service (clusterIP None), the
  ready addresses of its Endpoints (and the not-ready ones too when the Service says
  `publishNotReadyAddresses`); for an ExternalName Service, a CNAME to that name;
- `HOST.SVC.NS.svc.DOMAIN` for each address of a headless Service: A, that address;
  HOST is the endpoint's hostname (a StatefulSet pod's, with `subdomain`) or the
  address with dashes (10-1-2-3);
- `_PORT._PROTO.SVC.NS.svc.DOMAIN` for each named port: SRV to the Service's name (or
  to each address's name, headless).
Every name is lower case and ends with a dot, as DNS compares them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

TTL = 5  # seconds, as CoreDNS's kubernetes plugin: a changed Service shows soon


@dataclass(frozen=True)
class Srv:
    port: int
    target: str


@dataclass
class Zone:
    domain: str  # "cluster.local."
    a: dict[str, tuple[str, ...]] = field(default_factory=dict)
    cname: dict[str, str] = field(default_factory=dict)
    srv: dict[str, tuple[Srv, ...]] = field(default_factory=dict)

    def names(self) -> set[str]:
        """Every name that exists, with every name above it up to the domain (a name
        with nothing of its own but names below it exists too: NODATA, not NXDOMAIN)."""
        found = {self.domain}
        for name in (*self.a, *self.cname, *self.srv):
            labels = name.split(".")
            for i in range(len(labels) - self.domain.count(".")):
                found.add(".".join(labels[i:]))
        return found


def fqdn(name: str) -> str:
    return name.lower().rstrip(".") + "."


def _addresses(subsets: list[dict[str, Any]], *, not_ready: bool) -> list[dict[str, Any]]:
    found = [a for s in subsets for a in s.get("addresses") or []]
    if not_ready:
        found += [a for s in subsets for a in s.get("notReadyAddresses") or []]
    return [a for a in found if a.get("ip")]


def zone(services: Iterable[dict[str, Any]], endpoints: Iterable[dict[str, Any]],
         domain: str = "cluster.local") -> Zone:
    """The zone of these Services and Endpoints (as Kubernetes serves them, dicts)."""
    out = Zone(domain=fqdn(domain))
    subsets = {(e["metadata"].get("namespace"), e["metadata"]["name"]): e.get("subsets") or []
               for e in endpoints}
    for svc in services:
        meta, spec = svc["metadata"], svc.get("spec") or {}
        ns, name = meta.get("namespace") or "default", meta["name"]
        base = fqdn(f"{name}.{ns}.svc.{domain}")
        ports = [p for p in spec.get("ports") or [] if p.get("name")]
        if spec.get("type") == "ExternalName" and spec.get("externalName"):
            out.cname[base] = fqdn(spec["externalName"])
            continue
        cluster_ip = spec.get("clusterIP")
        if cluster_ip and cluster_ip != "None":
            out.a[base] = (cluster_ip,)
            for port in ports:
                srv = _srv_name(port, base)
                out.srv[srv] = (Srv(port=int(port["port"]), target=base),)
            continue
        if cluster_ip != "None":
            continue  # no address yet (being created): no name yet
        addresses = _addresses(subsets.get((ns, name), []),
                               not_ready=bool(spec.get("publishNotReadyAddresses")))
        ips = tuple(sorted({a["ip"] for a in addresses}))
        if ips:
            out.a[base] = ips
        targets: list[str] = []
        for address in addresses:
            host = address.get("hostname") or address["ip"].replace(".", "-")
            own = fqdn(f"{host}.{base}")
            out.a[own] = tuple(sorted({*out.a.get(own, ()), address["ip"]}))
            targets.append(own)
        for port in ports:
            out.srv[_srv_name(port, base)] = tuple(
                Srv(port=int(port.get("targetPort") if isinstance(port.get("targetPort"), int)
                             else port["port"]), target=t) for t in sorted(set(targets)))
    return out


def _srv_name(port: dict[str, Any], base: str) -> str:
    return fqdn(f"_{port['name']}._{str(port.get('protocol') or 'TCP').lower()}.{base}")
