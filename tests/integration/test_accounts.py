"""Local users on the real platform: passwords, sessions, API tokens, lockout, disabling,
groups feeding identities, and who may do what in the platform API."""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubeglobe.local.topology import GLOBAL
from tests.integration.conftest import Platform

PASSWORD = "a long passphrase 1"
SETUP = [
    {"apiVersion": "kubeglobe.io/v1alpha1", "kind": "Project", "metadata": {"name": "p3"},
     "spec": {"clusters": [{"name": "workload-1"}]}},
    {"apiVersion": "kubeglobe.io/v1alpha1", "kind": "ProjectNamespace",
     "metadata": {"name": "p3-dev-w1"},
     "spec": {"project": "p3", "cluster": "workload-1", "namespace": "p3-dev"}},
    {"apiVersion": "kubeglobe.io/v1alpha1", "kind": "PlatformRoleBinding",
     "metadata": {"name": "p3-devs-developer"},
     "spec": {"role": "developer", "subject": {"kind": "Group", "name": "p3-devs"},
              "scope": {"project": "p3"}}},
]


@pytest.fixture(scope="module")
def people(platform: Platform) -> Platform:
    platform.env.kubectl(GLOBAL, "apply", "-f", "-",
                         stdin="\n".join(json.dumps(d) for d in SETUP))
    for user in ("dave", "erin"):
        platform.cli("user", "create", user, "--password-stdin", stdin=PASSWORD + "\n")
    platform.cli("group", "create", "p3-devs", "--member", "dave")
    return platform


def _admin_login(platform: Platform) -> dict[str, Any]:
    saved: dict[str, Any] = yaml.safe_load(platform.config.read_text())
    return saved


def _login(platform: Platform, user: str, password: str,
           check: bool = True) -> tuple[Path, Any]:
    saved = _admin_login(platform)
    config = platform.workdir / f"{user}-config.yaml"
    done = platform.cli("login", "--server", saved["server"], "--ca-file", saved["ca_file"],
                        "--user", user, "--password-stdin", stdin=password + "\n",
                        config=config, check=check)
    return config, done


def _token(config: Path) -> str:
    token: str = yaml.safe_load(config.read_text())["token"]
    return token


def _api(platform: Platform, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
    saved = _admin_login(platform)
    return httpx.request(method, saved["server"] + path,
                         verify=ssl.create_default_context(cafile=saved["ca_file"]),
                         headers={"Authorization": f"Bearer {token}"}, timeout=30,
                         trust_env=False, **kw)


def test_login_with_password_and_group_roles_reach_the_cluster(people: Platform) -> None:
    config, done = _login(people, "dave", PASSWORD)
    assert "logged in" in done.stdout and "as dave" in done.stdout
    me = json.loads(people.cli("whoami", "-o", "json", config=config).stdout)
    assert me["user"] == "dave" and me["groups"] == ["p3-devs"]
    assert me["projectRoles"] == {"p3": ["developer"]}
    # the group's developer role is RBAC on workload-1, reached through the proxy as dave
    kubeconfig = people.workdir / "dave-w1.kubeconfig"
    people.cli("kubeconfig", "--cluster", "workload-1", "--output", str(kubeconfig),
               config=config)
    deadline = time.monotonic() + 30
    while True:
        ok = people.kubectl(kubeconfig, "-n", "p3-dev", "create", "configmap", "hello",
                            check=False)
        if ok.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert ok.returncode == 0, ok.stderr
    denied = people.kubectl(kubeconfig, "-n", "default", "get", "configmaps", check=False)
    assert denied.returncode != 0 and 'User "dave" cannot list' in denied.stderr


def test_the_platform_api_enforces_roles(people: Platform) -> None:
    config, _ = _login(people, "dave", PASSWORD)
    projects = json.loads(people.cli("project", "list", "-o", "json", config=config).stdout)
    assert [p["name"] for p in projects] == ["p3"]  # not the projects he is not in
    refused = people.cli("project", "create", "mine", config=config, check=False)
    assert refused.returncode == 2
    assert "user dave may not create projects; that needs the platform-admin role" in (
        refused.stderr.replace("\n", " "))
    users = people.cli("user", "list", config=config, check=False)
    assert users.returncode == 2 and "HTTP 403" in users.stderr.replace("\n", " ")
    mine = people.cli("namespace", "create", "p3-extra", "--project", "p3", "--cluster",
                      "workload-1", config=config, check=False)
    assert mine.returncode == 2 and "project-admin" in mine.stderr.replace("\n", " ")


def test_api_token_shown_once_works_and_revoked_is_refused_within_a_second(
        people: Platform) -> None:
    config, _ = _login(people, "dave", PASSWORD)
    issued = json.loads(people.cli("token", "create", "ci", "-o", "json",
                                   config=config).stdout)
    token = issued["token"]
    assert _api(people, token, "GET", "/api/v1/whoami").json()["user"] == "dave"
    listed = json.loads(people.cli("token", "list", "-o", "json", config=config).stdout)
    entry = next(t for t in listed if t["id"] == issued["id"])
    assert entry["kind"] == "api" and entry["name"] == "ci" and "token" not in entry
    secret = people.env.kubectl(GLOBAL, "-n", "kubeglobe-system", "get", "secret",
                                f"kubeglobe-token-{issued['id']}", "-o", "json").stdout
    assert token.split("_", 2)[2] not in secret  # only the hash is kept
    people.cli("token", "revoke", issued["id"], config=config)
    time.sleep(1.0)  # the authenticator remembers a token for at most one second
    refused = _api(people, token, "GET", "/api/v1/whoami")
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_five_failed_logins_lock_the_account_until_an_admin_unlocks_it(
        people: Platform) -> None:
    answers = [_login(people, "erin", "not the password", check=False)[1] for _ in range(5)]
    assert all(a.returncode == 2 for a in answers)
    assert "wrong user name or password (HTTP 401)" in answers[0].stderr.replace("\n", " ")
    assert "locked for 20 minutes" in answers[4].stderr.replace("\n", " ")
    _, right = _login(people, "erin", PASSWORD, check=False)
    assert right.returncode == 2
    assert "account erin is locked until" in right.stderr.replace("\n", " ")
    erin = json.loads(people.cli("user", "get", "erin", "-o", "json").stdout)
    assert erin["state"] == "Locked" and erin["failedLogins"] == 5
    people.cli("user", "unlock", "erin")
    _, again = _login(people, "erin", PASSWORD)
    assert "as erin" in again.stdout


def test_disabled_user_cannot_log_in_and_their_tokens_stop_at_once(people: Platform) -> None:
    config, _ = _login(people, "dave", PASSWORD)
    session = _token(config)
    assert _api(people, session, "GET", "/api/v1/whoami").status_code == 200
    people.cli("user", "update", "dave", "--disable")
    try:
        time.sleep(1.0)
        refused = _api(people, session, "GET", "/api/v1/whoami")
        assert refused.status_code == 401 and "disabled" in refused.json()["detail"]
        through_proxy = _api(people, session, "GET",
                             "/clusters/workload-1/k8s/api/v1/namespaces/p3-dev/configmaps")
        assert through_proxy.status_code == 401
        _, login = _login(people, "dave", PASSWORD, check=False)
        assert login.returncode == 2 and "disabled" in login.stderr
    finally:
        people.cli("user", "update", "dave", "--enable")
    assert _api(people, session, "GET", "/api/v1/whoami").status_code == 200


def test_deleting_a_user_removes_their_password_and_tokens(people: Platform) -> None:
    people.cli("user", "create", "frank", "--password-stdin", stdin=PASSWORD + "\n")
    config, _ = _login(people, "frank", PASSWORD)
    people.cli("user", "delete", "frank")
    people.cli("user", "delete", "frank")  # again: already gone is fine
    time.sleep(1.0)
    assert _api(people, _token(config), "GET", "/api/v1/whoami").status_code == 401
    left = people.env.kubectl(GLOBAL, "-n", "kubeglobe-system", "get", "secrets", "-l",
                              "kubeglobe.io/token-user=frank", "-o", "name").stdout
    assert left.strip() == ""
