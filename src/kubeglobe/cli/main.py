"""Entry point of the `kubeglobe` command."""

from __future__ import annotations

import typer

from kubeglobe.cli import accounts, cluster, local, tenancy
from kubeglobe.cli.agent import agent_command
from kubeglobe.cli.controller import controller_command
from kubeglobe.cli.dns import dns_command
from kubeglobe.cli.gateway import gateway_command
from kubeglobe.cli.install import install_command
from kubeglobe.cli.login import kubeconfig_command, login_command
from kubeglobe.cli.server import server_command

app = typer.Typer(no_args_is_help=True, help="KubeGlobe: one hub for many Kubernetes clusters.")
app.add_typer(local.app, name="local")
app.command("install")(install_command)
app.command("controller")(controller_command)
app.command("server")(server_command)
app.command("gateway")(gateway_command)
app.add_typer(cluster.app, name="cluster")
app.command("login")(login_command)
app.command("agent")(agent_command)
app.command("dns")(dns_command)
app.command("kubeconfig")(kubeconfig_command)
app.command("logout")(accounts.logout_command)
app.command("whoami")(accounts.whoami_command)
app.add_typer(accounts.users, name="user")
app.add_typer(accounts.groups, name="group")
app.add_typer(accounts.tokens, name="token")
app.add_typer(tenancy.projects, name="project")
app.add_typer(tenancy.namespaces, name="namespace")
app.add_typer(tenancy.bindings, name="rolebinding")


if __name__ == "__main__":
    app()
