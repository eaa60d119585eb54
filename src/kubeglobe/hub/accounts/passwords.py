"""Passwords of local users: argon2id hashes, kept in one Secret per user.

The Secret `kubeglobe-password-<user>` (system namespace, type `kubeglobe.io/password`)
holds only the hash and is owned by the User, so deleting the User deletes it.
Hashing and checking are CPU work (tens of ms by design); callers on an event loop run
them in a worker thread.
"""

from __future__ import annotations

import logging

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kubeglobe import failures
from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.kube.secrets import b64

log = logging.getLogger("kubeglobe.accounts")

PASSWORD_SECRET_TYPE = "kubeglobe.io/password"
MIN_LENGTH = 10
MAX_LENGTH = 256
_HASHER = PasswordHasher()
# Checked when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("not a password anyone has")


class PasswordRejected(ValueError):
    pass


def check_policy(password: str, *, user: str) -> None:
    """Refuse passwords that are too short, too long or the user's own name."""
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(f"the password is {len(password)} characters; use at least "
                               f"{MIN_LENGTH}")
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(f"the password is longer than {MAX_LENGTH} characters")
    if user.lower() in password.lower():
        raise PasswordRejected("the password contains the user name; choose another")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password: str, stored_hash: str | None) -> bool:
    """True if `password` matches; False for a wrong password or no hash at all."""
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except VerificationError:  # the wrong password: an answer, not a failure
        return False
    except InvalidHashError as e:  # a stored hash that is not argon2: nobody can sign in
        log.warning("a stored password hash is unreadable (%s); set that user's password "
                    "again", e)
        failures.count(component="accounts", operation="verify password", error=e)
        return False


def password_secret_name(user: str) -> str:
    return f"kubeglobe-password-{user}"


def password_secret(*, user: str, password_hash: str, owner_uid: str) -> dict[str, object]:
    """The Secret holding a user's hash, owned by (and deleted with) the User."""
    return {
        "apiVersion": "v1", "kind": "Secret", "type": PASSWORD_SECRET_TYPE,
        "metadata": {
            "name": password_secret_name(user), "namespace": SYSTEM_NAMESPACE,
            "labels": {"kubeglobe.io/user": user},
            "ownerReferences": [{"apiVersion": "kubeglobe.io/v1alpha1", "kind": "User",
                                 "name": user, "uid": owner_uid}],
        },
        "data": {"argon2": b64(password_hash)},
    }
