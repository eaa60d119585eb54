"""Entry point of the `kubeglobe` command."""

from __future__ import annotations

import typer

from kubeglobe.cli import local

app = typer.Typer(no_args_is_help=True, help="KubeGlobe: one hub for many Kubernetes clusters.")
app.add_typer(local.app, name="local")


if __name__ == "__main__":
    app()
