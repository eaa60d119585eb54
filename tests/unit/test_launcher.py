"""The `kubeglobe` program runs a platform daemon with its own command alone."""

from __future__ import annotations

import importlib
import subprocess
import sys

from kubeglobe.cli.launcher import DAEMONS
from kubeglobe.cli.main import app


def test_each_daemon_is_the_same_function_the_whole_cli_runs_by_that_name() -> None:
    registered = {c.name: c.callback for c in app.registered_commands}
    for name, (module, function) in DAEMONS.items():
        assert registered[name] is getattr(importlib.import_module(module), function), name


def test_a_daemon_imports_neither_the_other_commands_nor_their_libraries() -> None:
    probe = ("import sys; sys.argv = ['kubeglobe', 'dns', '--help']\n"
             "from kubeglobe.cli.launcher import main\n"
             "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
             "heavy = [m for m in ('fastapi', 'kopf', 'kubeglobe.cli.main', "
             "'kubeglobe.cli.accounts', 'kubeglobe.local.environment') if m in sys.modules]\n"
             "print('heavy:', heavy)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Usage: kubeglobe dns" in done.stdout
    assert done.stdout.strip().endswith("heavy: []"), done.stdout
