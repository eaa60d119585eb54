"""The platform's own certificates, kept in a directory (`certfiles`): the CA of its
serving certificate, the agents CA, the servers CA, the serving pair and the API
servers' client certificate for the gateway's port to the agents.

The local environment signs the serving pair with global's cluster CA (its PKI holds the
same names); `kubeglobe install` makes a platform CA of its own in the directory it is
given, since it holds no cluster CA's key. Either way, `ensure_platform_certs` issues
only what is missing or no longer fits, so it is safe to run again.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from kubeglobe.api.meta import PLATFORM_TLS_NAME
from kubeglobe.certfiles import CertPair, Issuer, ensure_ca, ensure_cert


@dataclass(frozen=True)
class PlatformPki:
    """Where each of the platform's credentials is, below `dir`."""

    dir: Path

    def pair(self, name: str) -> CertPair:
        return CertPair(cert=self.dir / f"{name}.crt", key=self.dir / f"{name}.key")

    @property
    def ca(self) -> CertPair:
        return self.pair("ca")

    @property
    def agents_ca(self) -> CertPair:
        return self.pair("agents-ca")

    @property
    def servers_ca(self) -> CertPair:
        return self.pair("servers-ca")

    @property
    def serving(self) -> CertPair:
        return self.pair("platform-server")

    @property
    def gateway_client(self) -> CertPair:
        return self.pair("platform-server-client")


def _split(hosts: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(DNS names, IP addresses) of `hosts`."""
    names, ips = [], []
    for host in hosts:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            names.append(host)
        else:
            ips.append(host)
    return tuple(names), tuple(ips)


def ensure_platform_certs(pki: PlatformPki, *, ca: Issuer, hosts: tuple[str, ...],
                          label: str) -> None:
    """The platform's certificates below `pki.dir`; the serving pair signed by `ca` for
    `hosts` (where clients reach the gateway) and the platform's own name."""
    names, ips = _split(hosts)
    # Signs only agents' certificates for the gateway's agent port: a certificate of the
    # cluster CA would also log in to the global apiserver.
    ensure_ca(pair=pki.agents_ca, common_name=f"kubeglobe-{label}-agents-ca")
    ensure_cert(issuer=ca, pair=pki.serving, common_name="kubeglobe-server",
                dns_names=tuple(dict.fromkeys(("localhost", PLATFORM_TLS_NAME, *names))),
                ip_addresses=tuple(dict.fromkeys(("127.0.0.1", *ips))), server=True)
    # Signs only the servers' client certificate for the gateway's port to the agents,
    # which lets its holder act as anyone on any registered cluster.
    servers_ca = ensure_ca(pair=pki.servers_ca, common_name=f"kubeglobe-{label}-servers-ca")
    ensure_cert(issuer=servers_ca, pair=pki.gateway_client, common_name="kubeglobe-server",
                client=True)


def ensure_own_platform_pki(directory: Path, *, hosts: tuple[str, ...]) -> PlatformPki:
    """A platform PKI with a CA of its own (`kubeglobe install`)."""
    pki = PlatformPki(dir=directory)
    ca = ensure_ca(pair=pki.ca, common_name="kubeglobe-platform-ca")
    ensure_platform_certs(pki, ca=ca, hosts=hosts, label="platform")
    return pki
