"""`kubeglobe user|group|token ...`, `whoami` and `logout`: people and their credentials."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from kubeglobe.cli.common import cli_errors, out
from kubeglobe.cli.config import CliError, config_path, load_config
from kubeglobe.cli.views import Output, View, call, call_and_show, client, emit

users = typer.Typer(no_args_is_help=True, help="Local users (platform admins manage them).")
groups = typer.Typer(no_args_is_help=True, help="Groups of users, bound to roles as one.")
tokens = typer.Typer(no_args_is_help=True, help="Your API tokens (shown once, revocable).")


def read_password(password_stdin: bool, prompt: str = "password") -> str:
    """From stdin (first line) for scripts, else asked for without echo."""
    if password_stdin:
        line = sys.stdin.readline().rstrip("\n")
        if not line:
            raise CliError("--password-stdin was given but stdin had no password")
        return line
    value: str = typer.prompt(prompt, hide_input=True)
    return value


def _user_row(u: dict[str, object]) -> list[object]:
    spec = u["spec"]
    assert isinstance(spec, dict)
    return [u["name"], u["state"], spec.get("displayName"), spec.get("email"),
            u.get("lockedUntil"), u.get("lastLoginTime")]


USERS = View(("NAME", "STATE", "DISPLAY NAME", "EMAIL", "LOCKED UNTIL", "LAST LOGIN"), _user_row)

PasswordStdin = Annotated[bool, typer.Option("--password-stdin",
                                             help="Read the password from stdin.")]


@users.command("create")
def user_create(
    name: str,
    display_name: Annotated[str | None, typer.Option(help="A name for people.")] = None,
    email: Annotated[str | None, typer.Option()] = None,
    no_password: Annotated[bool, typer.Option(help="Create without a password (the user "
                                              "cannot log in until one is set).")] = False,
    password_stdin: PasswordStdin = False,
    output: Output = "table",
) -> None:
    """Create a local user with a password (asked for, or from stdin)."""
    with cli_errors(CliError):
        password = None if no_password else read_password(password_stdin)
        call_and_show(USERS, "POST", "/api/v1/users", output, json={
            "name": name, "password": password, "displayName": display_name, "email": email})


@users.command("list")
def user_list(output: Output = "table") -> None:
    """Users with their state (Active, Disabled, Locked)."""
    call_and_show(USERS, "GET", "/api/v1/users", output, listed=True)


@users.command("get")
def user_get(name: str, output: Output = "table") -> None:
    call_and_show(USERS, "GET", f"/api/v1/users/{name}", output)


@users.command("update")
def user_update(
    name: str,
    display_name: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    enable: Annotated[bool | None, typer.Option(
        "--enable/--disable", help="Disabling stops the user's sessions and tokens at once.",
        show_default=False)] = None,
    output: Output = "table",
) -> None:
    """Change a user's details, or enable/disable them."""
    changes = (("displayName", display_name), ("email", email),
               ("disabled", None if enable is None else not enable))
    body = {k: v for k, v in changes if v is not None}
    with cli_errors(CliError):
        if not body:
            raise CliError("nothing to change; give --display-name, --email, --enable or "
                           "--disable")
        call_and_show(USERS, "PATCH", f"/api/v1/users/{name}", output, json=body)


@users.command("passwd")
def user_passwd(name: Annotated[str | None, typer.Argument(help="default: yourself")] = None,
                password_stdin: PasswordStdin = False) -> None:
    """Set a password: your own (asks for the current one too), or anyone's as an admin.
    With --password-stdin: the new password on the first line, the current on the second."""
    with cli_errors(CliError):
        api = client()
        who = name or api.request("GET", "/api/v1/whoami")["user"]
        new = read_password(password_stdin, "new password")
        current = None
        if name is None:
            current = read_password(password_stdin, "current password")
        api.request("PUT", f"/api/v1/users/{who}/password",
                    json={"password": new, "currentPassword": current})
    out.print(f"password of {who} changed")


@users.command("unlock")
def user_unlock(name: str) -> None:
    """Lift a lock after failed logins."""
    call("POST", f"/api/v1/users/{name}/unlock")
    out.print(f"user {name} unlocked")


@users.command("delete")
def user_delete(name: str) -> None:
    """Delete a user with their password and tokens."""
    call("DELETE", f"/api/v1/users/{name}")
    out.print(f"user {name} deleted")


# -- groups ----------------------------------------------------------------------------
def _group_row(g: dict[str, object]) -> list[object]:
    spec = g["spec"]
    assert isinstance(spec, dict)
    return [g["name"], ", ".join(spec.get("members") or [])]


GROUPS = View(("NAME", "MEMBERS"), _group_row)


@groups.command("create")
def group_create(name: str, member: Annotated[list[str] | None, typer.Option(
        "--member", help="A user in the group (repeat).")] = None,
        output: Output = "table") -> None:
    call_and_show(GROUPS, "POST", "/api/v1/groups", output,
                  json={"name": name, "spec": {"members": member or []}})


@groups.command("set-members")
def group_set_members(name: str, member: Annotated[list[str] | None, typer.Option(
        "--member", help="A user in the group (repeat; none empties it).")] = None,
        output: Output = "table") -> None:
    """Replace the group's members."""
    call_and_show(GROUPS, "PUT", f"/api/v1/groups/{name}", output, json={"members": member or []})


@groups.command("list")
def group_list(output: Output = "table") -> None:
    call_and_show(GROUPS, "GET", "/api/v1/groups", output, listed=True)


@groups.command("delete")
def group_delete(name: str) -> None:
    call("DELETE", f"/api/v1/groups/{name}")
    out.print(f"group {name} deleted")


# -- tokens ----------------------------------------------------------------------------
def _token_row(t: dict[str, object]) -> list[object]:
    return [t["id"], t["user"], t["kind"], t["name"], t.get("created"), t.get("expires")]


TOKENS = View(("ID", "USER", "KIND", "NAME", "CREATED", "EXPIRES"), _token_row)


@tokens.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="What the token is for.")],
    expires_in_days: Annotated[int | None, typer.Option(help="Default: until revoked.")] = None,
    output: Output = "table",
) -> None:
    """A new API token for you; it is printed once and never again."""
    with cli_errors(CliError):
        issued = client().request("POST", "/api/v1/tokens", json={
            "name": name, "expiresInDays": expires_in_days})
        if emit(issued, output):
            return
    out.print(f"token {issued['id']} ({name}), shown once: {issued['token']}", soft_wrap=True)


@tokens.command("list")
def token_list(
    user: Annotated[str | None, typer.Option(help="Another user's (admins, auditors).")] = None,
    all_users: Annotated[bool, typer.Option("--all", help="Everyone's.")] = False,
    output: Output = "table",
) -> None:
    params = {k: v for k, v in (("user", user), ("all_users", "true" if all_users else ""))
              if v}
    call_and_show(TOKENS, "GET", "/api/v1/tokens", output, listed=True, params=params)


@tokens.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke a token by its id; it stops working within a second."""
    call("DELETE", f"/api/v1/tokens/{token_id}")
    out.print(f"token {token_id} revoked")


def whoami_command(output: Output = "table") -> None:
    """Who the saved login is, with groups and roles."""
    with cli_errors(CliError):
        me = client().request("GET", "/api/v1/whoami")
        if emit(me, output):
            return
    out.print(f"user: {me['user']}\ngroups: {', '.join(me['groups']) or '-'}\n"
              f"platform roles: {', '.join(me['platformRoles']) or '-'}")
    for kind in ("projectRoles", "namespaceRoles"):
        for scope, roles in sorted(me[kind].items()):
            out.print(f"{kind.removesuffix('Roles')} {scope}: {', '.join(roles)}")


def logout_command() -> None:
    """End the saved login session on the server and forget it here."""
    with cli_errors(CliError):
        config = load_config()
        client().request("POST", "/api/v1/logout")
        config_path().unlink(missing_ok=True)
    out.print(f"logged out of {config.server}")
