"""The `kubeglobe` program: a platform daemon imports only its own command.

The platform's pods run `kubeglobe dns`, `kubeglobe gateway`, ... one per container, a
dozen in an environment. The whole CLI (every noun, FastAPI, kopf) costs each of them
about 100 MiB resident before it does anything; a daemon's own module costs 40-70. So
these commands are found here by name and imported alone; everything else (and
`--help`) goes to the whole app in `cli/main.py`.
"""

from __future__ import annotations

import importlib
import sys

import typer

DAEMONS = {  # command -> (module, function)
    "agent": ("kubeglobe.cli.agent", "agent_command"),
    "controller": ("kubeglobe.cli.controller", "controller_command"),
    "dns": ("kubeglobe.cli.dns", "dns_command"),
    "gateway": ("kubeglobe.cli.gateway", "gateway_command"),
    "server": ("kubeglobe.cli.server", "server_command"),
}


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in DAEMONS:
        from kubeglobe.cli.main import app  # the whole CLI: imported late, on purpose
        app()
        return
    module, function = DAEMONS[name]
    alone = typer.Typer(add_completion=False)
    alone.command(name)(getattr(importlib.import_module(module), function))
    alone(args=sys.argv[2:], prog_name=f"kubeglobe {name}")
