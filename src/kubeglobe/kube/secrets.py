"""A Secret's `data`: its values are base64; callers read and write text."""

from __future__ import annotations

import base64


def b64(text: str) -> str:
    """`text` as a Secret's `data` holds it."""
    return base64.b64encode(text.encode()).decode()


def secret_text(data: dict[str, str] | None, key: str) -> str | None:
    """The decoded value of `key`, or None when the Secret has no such key."""
    raw = (data or {}).get(key)
    return None if raw is None else base64.b64decode(raw).decode()


def required_secret_text(data: dict[str, str] | None, key: str, *, secret: str) -> str:
    value = secret_text(data, key)
    if value is None:
        raise KeyError(f"Secret {secret} has no key {key!r}")
    return value
