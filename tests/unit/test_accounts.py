"""Pure rules of accounts: passwords, the lockout rule, user tokens, platform access."""

import datetime as dt

import pytest

from kubeglobe.api.meta import PLATFORM_ADMINS
from kubeglobe.api.tenancy import PlatformRoleBindingSpec, UserStatus
from kubeglobe.hub.accounts.lockout import after_failure, after_success, locked_until, unlocked
from kubeglobe.hub.accounts.passwords import (
    PasswordRejected,
    check_policy,
    hash_password,
    verify_password,
)
from kubeglobe.hub.tenancy.access import access_for
from kubeglobe.hub.tokens import Identity, check_token, issue_token, parse_token

T0 = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)


def test_password_hash_checks_and_policy() -> None:
    digest = hash_password("correct horse battery")
    assert digest.startswith("$argon2id$")
    assert verify_password("correct horse battery", digest)
    assert not verify_password("wrong horse battery", digest)
    assert not verify_password("correct horse battery", None)
    assert not verify_password("x", "not-a-hash")
    with pytest.raises(PasswordRejected, match="at least 10"):
        check_policy("short", user="alice")
    with pytest.raises(PasswordRejected, match="user name"):
        check_policy("alice-is-great-42", user="alice")
    check_policy("a long enough one", user="alice")


def test_five_failures_within_a_day_lock_for_twenty_minutes() -> None:
    status = UserStatus()
    for i in range(4):
        status = after_failure(status, T0 + dt.timedelta(minutes=i))
        assert locked_until(status, T0 + dt.timedelta(minutes=i)) is None
    status = after_failure(status, T0 + dt.timedelta(minutes=4))
    until = locked_until(status, T0 + dt.timedelta(minutes=4))
    assert until == T0 + dt.timedelta(minutes=24)
    assert locked_until(status, T0 + dt.timedelta(minutes=23, seconds=59)) == until
    assert locked_until(status, T0 + dt.timedelta(minutes=24)) is None
    # once the lock is over, one more mistake does not lock again
    later = after_failure(status, T0 + dt.timedelta(minutes=30))
    assert locked_until(later, T0 + dt.timedelta(minutes=30)) is None
    assert len(later.failedLogins) == 1


def test_failures_older_than_a_day_do_not_count_and_success_clears() -> None:
    status = UserStatus()
    for i in range(4):
        status = after_failure(status, T0 + dt.timedelta(hours=i))
    # 25 h after the first: only 3 of the old 4 are within the window, plus this one
    status = after_failure(status, T0 + dt.timedelta(hours=25))
    assert locked_until(status, T0 + dt.timedelta(hours=25)) is None
    assert len(status.failedLogins) == 3
    ok = after_success(status, T0 + dt.timedelta(hours=26))
    assert ok.failedLogins == [] and ok.lastLoginTime == "2026-11-28T10:00:00Z"
    locked = UserStatus(failedLogins=["x"] * 5, lockedUntil="2026-11-27T09:00:00Z")
    assert unlocked(locked).lockedUntil is None


def test_user_tokens_carry_kind_expiry_and_owner() -> None:
    expires = T0 + dt.timedelta(hours=12)
    issued = issue_token(user="alice", groups=(), kind="session", name="login session",
                         expires=expires, owner_uid="u-1")
    parsed = parse_token(issued.token)
    assert parsed is not None
    record = check_token(secret_part=parsed[1], data=issued.manifest["data"])  # type: ignore[arg-type]
    assert record is not None
    assert (record.kind, record.name, record.expires) == ("session", "login session", expires)
    assert not record.expired(expires - dt.timedelta(seconds=1))
    assert record.expired(expires)
    meta = issued.manifest["metadata"]
    assert meta["ownerReferences"][0]["uid"] == "u-1"  # type: ignore[index]


def _binding(role: str, kind: str, name: str, **scope: str) -> PlatformRoleBindingSpec:
    return PlatformRoleBindingSpec.model_validate(
        {"role": role, "subject": {"kind": kind, "name": name}, "scope": scope})


def test_access_from_bindings() -> None:
    bindings = [
        _binding("developer", "User", "alice", project="p1"),
        _binding("project-admin", "Group", "team-b", project="p2"),
        _binding("viewer", "User", "dan", namespace="p3-dev-w1"),
        _binding("platform-auditor", "User", "carol"),
    ]
    ns = {"p3-dev-w1": "p3", "p1-dev-w1": "p1"}
    alice = access_for(Identity("alice", ()), bindings=bindings, namespace_projects=ns)
    assert alice.member_of("p1") and not alice.member_of("p2")
    assert not alice.manages("p1") and not alice.reads_all
    bob = access_for(Identity("bob", ("team-b",)), bindings=bindings, namespace_projects=ns)
    assert bob.manages("p2") and not bob.manages("p1")
    assert bob.may_bind(_binding("developer", "User", "x", project="p2"))
    assert not bob.may_bind(_binding("developer", "User", "x", project="p1"))
    assert not bob.may_bind(_binding("platform-admin", "User", "x"))
    dan = access_for(Identity("dan", ()), bindings=bindings, namespace_projects=ns)
    assert dan.member_of("p3") and dan.sees_namespace("p3-dev-w1", "p3")
    assert not dan.sees_namespace("p3-prod-w1", "p3")
    carol = access_for(Identity("carol", ()), bindings=bindings, namespace_projects=ns)
    assert carol.reads_all and not carol.admin
    admin = access_for(Identity("admin", (PLATFORM_ADMINS,)), bindings=[], namespace_projects={})
    assert admin.admin and admin.may_bind(_binding("platform-admin", "User", "x"))
