"""Which tokens the gateway may serve itself, and as whom (pure).

HAProxy looks up the SHA-256 of a request's bearer token (the digest its Secret
stores) in a map of `<expiry epoch or 0>|<user>|<group>|<group>...`; a miss goes to the
API servers, which check the token the slow way. So the map holds exactly the tokens
`server/auth.py` would accept (`system` tokens with their groups; `session` and `api`
tokens of an enabled User, with the Groups listing the user), with that identity.

An entry never outlives `lease_end`: the sync renews the map every `REFRESH_SECONDS`,
so if it dies the fast path lapses within `LEASE_SECONDS` (fail closed). An identity
the map cannot carry safely (a name outside `SAFE`, more than `MAX_GROUPS` groups) is
left to the slow path.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kubeglobe.hub.tokens import USER_TOKEN_KINDS, TokenRecord

MAX_GROUPS = 16  # one HAProxy rule per group slot; more groups take the slow path
LEASE_SECONDS = 30
REFRESH_SECONDS = 10
SAFE = re.compile(r"^[A-Za-z0-9:._@-]+$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class StoredToken:
    """A token Secret as the gateway sees it: the digest it stores and what it says."""

    digest: str
    record: TokenRecord


def lease_end(now: dt.datetime) -> int:
    """Until when (epoch seconds) entries written at `now` may serve; the same for a
    whole refresh window, so the map only changes once per window."""
    epoch = int(now.timestamp())
    return epoch - epoch % REFRESH_SECONDS + LEASE_SECONDS


def entry(record: TokenRecord, groups: tuple[str, ...], *, until: int) -> str | None:
    """The map value for this identity, or None if the map cannot carry it."""
    names = (record.user, *groups)
    if len(groups) > MAX_GROUPS or not all(SAFE.match(n) for n in names):
        return None
    expires = until if record.expires is None else min(until, int(record.expires.timestamp()))
    return "|".join((str(expires), *names))


def groups_by_member(groups: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    """{user: the names of the Groups listing them, sorted} from {group: members}."""
    found: dict[str, list[str]] = {}
    for group, members in groups.items():
        for member in set(members):
            found.setdefault(member, []).append(group)
    return {user: tuple(sorted(names)) for user, names in found.items()}


def identity_map(tokens: Iterable[StoredToken], *, enabled_users: set[str],
                 groups: Mapping[str, Iterable[str]], now: dt.datetime) -> dict[str, str]:
    """{token digest: map value} for every token the gateway may serve at `now`."""
    member_of = groups_by_member(groups)
    until = lease_end(now)
    wanted: dict[str, str] = {}
    for token in tokens:
        record = token.record
        if not _DIGEST.match(token.digest) or record.expired(now):
            continue
        if record.kind in USER_TOKEN_KINDS:
            if record.user not in enabled_users:
                continue
            value = entry(record, member_of.get(record.user, ()), until=until)
        else:
            value = entry(record, record.groups, until=until)
        if value is not None:
            wanted[token.digest] = value
    return wanted
