"""API tokens: shown once, stored hashed in Secrets of the global cluster.

A token reads `kg_<id>_<secret>`. The id names the Secret (`kubeglobe-token-<id>` in
the system namespace) that holds the token's user, groups and the SHA-256 of the secret
part; the secret part itself is never stored. Tokens are random 192-bit values, so a
plain hash is enough (argon2 is for passwords people choose).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.kube.secrets import secret_text

TOKEN_SECRET_TYPE = "kubeglobe.io/token"
TOKEN_USER_LABEL = "kubeglobe.io/token-user"
BOOTSTRAP_LABEL = "kubeglobe.io/bootstrap-admin"
ADMIN_USER = "admin"
PLATFORM_ADMINS = "kubeglobe:platform-admins"
_TOKEN = re.compile(r"^kg_([0-9a-f]{12})_([A-Za-z0-9_-]{32})$")


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...]


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


def _digest(secret_part: str) -> str:
    return hashlib.sha256(secret_part.encode()).hexdigest()


def issue_token(*, user: str, groups: tuple[str, ...], labels: dict[str, str] | None = None,
                token_id: str | None = None, secret_part: str | None = None) -> IssuedToken:
    """A new token and the Secret manifest that makes it valid (pure but for randomness)."""
    ident = token_id or secrets.token_hex(6)
    part = secret_part or secrets.token_urlsafe(24)
    name = secret_name(ident)

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    manifest: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": TOKEN_SECRET_TYPE,
        "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE,
                     "labels": {TOKEN_USER_LABEL: label_value(user), **(labels or {})}},
        "data": {"user": b64(user), "groups": b64(",".join(groups)),
                 "sha256": b64(_digest(part))},
    }
    return IssuedToken(token=f"kg_{ident}_{part}", secret_name=name, manifest=manifest)


def parse_token(token: str) -> tuple[str, str] | None:
    """(id, secret part) of a well-formed token, else None."""
    m = _TOKEN.match(token)
    return None if m is None else (m.group(1), m.group(2))


def check_token(*, secret_part: str, data: dict[str, str]) -> Identity | None:
    """The identity a token's Secret data grants, if the secret part matches its hash."""
    def text(key: str) -> str:
        return secret_text(data, key) or ""

    if not hmac.compare_digest(text("sha256"), _digest(secret_part)):
        return None
    groups = tuple(g for g in text("groups").split(",") if g)
    return Identity(user=text("user"), groups=groups)
