"""Tokens: shown once, stored hashed in Secrets of the global cluster.

A token reads `kg_<id>_<secret>`; the id names its Secret (`kubeglobe-token-<id>`),
which holds the user, groups, kind, name, expiry and the SHA-256 of the secret part.
Tokens are random 192-bit values, so a plain hash is enough (argon2 is for passwords
people choose). `system` tokens carry their groups; `session` and `api` tokens belong
to a local User (owned by it), who must exist and be enabled at each use, and get the
groups of the Groups that list the user.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal, cast

from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.kube.microtime import format_time, parse_time
from kubeglobe.kube.secrets import b64, secret_text

TOKEN_SECRET_TYPE = "kubeglobe.io/token"
TOKEN_USER_LABEL = "kubeglobe.io/token-user"
TOKEN_KIND_LABEL = "kubeglobe.io/token-kind"
BOOTSTRAP_LABEL = "kubeglobe.io/bootstrap-admin"
ADMIN_USER = "admin"
_TOKEN = re.compile(r"^kg_([0-9a-f]{12})_([A-Za-z0-9_-]{32})$")


TokenKind = Literal["system", "session", "api"]
USER_TOKEN_KINDS = ("session", "api")


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...]
    token_id: str | None = None
    token_kind: TokenKind = "system"


@dataclass(frozen=True)
class TokenRecord:
    """What a token's Secret says, once the secret part matched."""

    user: str
    groups: tuple[str, ...]
    kind: TokenKind
    name: str
    expires: dt.datetime | None

    def expired(self, now: dt.datetime) -> bool:
        return self.expires is not None and now >= self.expires


@dataclass(frozen=True)
class IssuedToken:
    token: str  # show once; never stored
    secret_name: str
    manifest: dict[str, object]


def label_value(text: str) -> str:
    """`text` as a valid label value (for listing tokens by user; the data holds the truth)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:63].strip("_.-")


def secret_name(token_id: str) -> str:
    return f"kubeglobe-token-{token_id}"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def issue_token(*, user: str, groups: tuple[str, ...], labels: dict[str, str] | None = None,
                kind: TokenKind = "system", name: str = "", expires: dt.datetime | None = None,
                owner_uid: str | None = None) -> IssuedToken:
    """A new token and the Secret manifest that makes it valid (pure but for randomness);
    `owner_uid` is the User's, for user tokens, so deleting the User deletes them."""
    ident = secrets.token_hex(6)
    part = secrets.token_urlsafe(24)
    metadata: dict[str, object] = {
        "name": secret_name(ident), "namespace": SYSTEM_NAMESPACE,
        "labels": {TOKEN_USER_LABEL: label_value(user), TOKEN_KIND_LABEL: kind,
                   **(labels or {})},
    }
    if owner_uid is not None:
        metadata["ownerReferences"] = [{"apiVersion": "kubeglobe.io/v1alpha1", "kind": "User",
                                        "name": user, "uid": owner_uid}]
    data = {"user": b64(user), "groups": b64(",".join(groups)), "sha256": b64(sha256_hex(part)),
            "kind": b64(kind), "name": b64(name)}
    if expires is not None:
        data["expires"] = b64(format_time(expires))
    manifest: dict[str, object] = {"apiVersion": "v1", "kind": "Secret",
                                   "type": TOKEN_SECRET_TYPE, "metadata": metadata,
                                   "data": data}
    return IssuedToken(token=f"kg_{ident}_{part}", secret_name=secret_name(ident),
                       manifest=manifest)


def parse_token(token: str) -> tuple[str, str] | None:
    """(id, secret part) of a well-formed token, else None."""
    m = _TOKEN.match(token)
    return None if m is None else (m.group(1), m.group(2))


def read_token_record(data: dict[str, str]) -> TokenRecord:
    """What a token Secret's data says (without checking any secret part)."""
    def text(key: str) -> str:
        return secret_text(data, key) or ""

    kind = text("kind") or "system"
    if kind not in ("system", *USER_TOKEN_KINDS):
        kind = "system"
    expires = text("expires")
    return TokenRecord(user=text("user"), groups=tuple(g for g in text("groups").split(",") if g),
                       kind=cast(TokenKind, kind), name=text("name"),
                       expires=parse_time(expires) if expires else None)


def check_token(*, secret_part: str, data: dict[str, str]) -> TokenRecord | None:
    """The token's record, if the secret part matches its hash."""
    if not hmac.compare_digest(secret_text(data, "sha256") or "", sha256_hex(secret_part)):
        return None
    return read_token_record(data)
