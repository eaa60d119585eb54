"""Answering one DNS query from the zone (pure: a message in, a message out).

A name under the cluster's domain is answered here and only here (authoritative): its
records, NODATA when the name exists without records of the asked type (a parent such
as `NS.svc.DOMAIN`, or AAAA: the clusters are IPv4), NXDOMAIN when it does not exist,
with the zone's SOA in the authority section so resolvers cache the negative answer for
its TTL. Any other name is not ours: `answer` returns None and the server forwards it.
"""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from kubeglobe.dns.records import TTL, Zone

MAX_CNAME_HOPS = 8


def _soa(zone: Zone) -> dns.rrset.RRset:
    return dns.rrset.from_text(
        zone.domain, TTL, "IN", "SOA",
        f"ns.dns.{zone.domain} hostmaster.{zone.domain} 1 7200 1800 86400 {TTL}")


def answer(query: dns.message.Message, zone: Zone) -> dns.message.Message | None:
    """The answer to `query`, or None if its name is not under the zone's domain."""
    if len(query.question) != 1:
        reply = dns.message.make_response(query)
        reply.set_rcode(dns.rcode.FORMERR)
        return reply
    question = query.question[0]
    name = question.name.to_text().lower()
    if not (name == zone.domain or name.endswith("." + zone.domain)):
        return None
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.AA
    reply.flags &= ~dns.flags.RA
    if question.rdclass != dns.rdataclass.IN:
        reply.set_rcode(dns.rcode.REFUSED)
        return reply
    wanted = question.rdtype
    hops = 0
    while name in zone.cname and wanted != dns.rdatatype.CNAME and hops < MAX_CNAME_HOPS:
        target = zone.cname[name]
        reply.answer.append(dns.rrset.from_text(name, TTL, "IN", "CNAME", target))
        hops += 1
        if not target.endswith("." + zone.domain):
            return reply  # an outside name: the client resolves it on
        name = target
    records = _records(zone, name, wanted)
    if records is not None:
        reply.answer.append(records)
        if wanted == dns.rdatatype.SRV:  # the targets' addresses, saving a round trip
            for item in records:
                target = item.target.to_text().lower()
                if target in zone.a:
                    reply.additional.append(dns.rrset.from_text_list(
                        target, TTL, "IN", "A", list(zone.a[target])))
    elif not reply.answer:
        if name not in zone.names():
            reply.set_rcode(dns.rcode.NXDOMAIN)
        reply.authority.append(_soa(zone))
    return reply


def _records(zone: Zone, name: str, wanted: int) -> dns.rrset.RRset | None:
    if wanted == dns.rdatatype.A and name in zone.a:
        return dns.rrset.from_text_list(name, TTL, "IN", "A", list(zone.a[name]))
    if wanted == dns.rdatatype.CNAME and name in zone.cname:
        return dns.rrset.from_text(name, TTL, "IN", "CNAME", zone.cname[name])
    if wanted == dns.rdatatype.SRV and name in zone.srv:
        return dns.rrset.from_text_list(
            name, TTL, "IN", "SRV", [f"0 100 {s.port} {s.target}" for s in zone.srv[name]])
    if wanted == dns.rdatatype.SOA and name == zone.domain:
        return _soa(zone)
    return None
