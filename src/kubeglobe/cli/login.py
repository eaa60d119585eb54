"""`kubeglobe login` and `kubeglobe kubeconfig`: reach the hub, then clusters through it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from kubeglobe.cli.accounts import read_password
from kubeglobe.cli.common import cli_errors, out
from kubeglobe.cli.config import (
    ApiClient,
    CliConfig,
    CliError,
    load_config,
    login_with_password,
    save_config,
)
from kubeglobe.files import write_atomic


def login_command(
    server: Annotated[str, typer.Option(help="The platform API, e.g. https://10.250.0.1:20016")],
    token: Annotated[str | None, typer.Option(
        help="An API token (the bootstrap admin's at first).")] = None,
    user: Annotated[str | None, typer.Option(
        "--user", "-u", help="Log in as a local user with a password instead.")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from stdin.")] = False,
    ca_file: Annotated[Path | None, typer.Option(help="CA that signed the server's cert.")] = None,
) -> None:
    """Log in with a token or a user's password (12 h session); saves the login.

    The password is asked for without echo, or read from stdin with --password-stdin."""
    with cli_errors(CliError):
        if (token is None) == (user is None):
            raise CliError("give --token TOKEN, or --user NAME (the password is asked for)")
        ca = str(ca_file.resolve()) if ca_file else None
        expires = None
        if user is not None:
            password = read_password(password_stdin)
            session = login_with_password(server=server, ca_file=ca, user=user,
                                          password=password)
            token, expires = session["token"], session["expires"]
        assert token is not None
        config = CliConfig(server=server, token=token, ca_file=ca)
        me = ApiClient(config).request("GET", "/api/v1/whoami")
        path = save_config(config)
    until = f" until {expires}" if expires else ""
    out.print(f"logged in to {server} as {me['user']}{until}; saved to {path}")


def kubeconfig_command(
    cluster: Annotated[str, typer.Option("--cluster", help="The cluster to reach.")],
    output: Annotated[Path | None, typer.Option("--output", help="Write here, not stdout.")]
    = None,
) -> None:
    """A kubeconfig that reaches CLUSTER through the hub's proxy, as you."""
    with cli_errors(CliError):
        config = load_config()
        ApiClient(config).request("GET", f"/api/v1/clusters/{cluster}")
        entry: dict[str, object] = {"server": f"{config.server.rstrip('/')}/clusters/{cluster}/k8s"}
        if config.ca_file:
            entry["certificate-authority"] = str(Path(config.ca_file).resolve())
        doc = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": f"kubeglobe-{cluster}", "cluster": entry}],
            "users": [{"name": "kubeglobe", "user": {"token": config.token}}],
            "contexts": [{"name": f"kubeglobe-{cluster}",
                          "context": {"cluster": f"kubeglobe-{cluster}", "user": "kubeglobe"}}],
            "current-context": f"kubeglobe-{cluster}",
        }
        text = yaml.safe_dump(doc, sort_keys=False)
    if output is None:
        typer.echo(text, nl=False)
        return
    write_atomic(output, text.encode())  # private: it holds the token
    out.print(f"kubeconfig for {cluster} written to {output}")
