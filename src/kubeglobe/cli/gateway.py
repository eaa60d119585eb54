"""`kubeglobe gateway`: keep one HAProxy's cluster-proxy fast path in line with the platform.

Runs beside each gateway HAProxy (one per HAProxy, no leader: each keeps its own).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from kubeglobe.cli.common import KubeconfigOpt, cli_errors, run_until_signalled
from kubeglobe.gateway.frontend import GatewayFiles
from kubeglobe.gateway.sync import GatewaySync, haproxy_check, make_runtime
from kubeglobe.kube.client import KubeconfigError, async_client, load_kubeconfig


def gateway_command(
    directory: Annotated[Path, typer.Option(
        "--dir", help="Where HAProxy reads the gateway's maps and backends and has its "
                      "admin.sock and master.sock.")],
    haproxy_config: Annotated[Path, typer.Option(
        help="HAProxy's main configuration, to check new backends against.")],
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Serve cluster-proxy requests of imported clusters from HAProxy itself."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not haproxy_config.is_file():
        raise typer.BadParameter(f"{haproxy_config} is not a file; pass HAProxy's main "
                                 "configuration", param_hint="--haproxy-config")
    with cli_errors(KubeconfigError):
        config = load_kubeconfig(path=kubeconfig)
    files = GatewayFiles(directory)

    async def main() -> None:
        sync = GatewaySync(hub=async_client(config), runtime=make_runtime(files), files=files,
                           validate=haproxy_check(haproxy_config))
        await sync.run()

    run_until_signalled(main())
