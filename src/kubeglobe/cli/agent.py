"""`kubeglobe agent`: the agent process, in a workload cluster (or beside one)."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Annotated

import typer
from lightkube.resources.core_v1 import Secret

from kubeglobe.agent.client import AgentSettings, CredentialStore, run_agent
from kubeglobe.agent.credentials import FileStore, SecretStore
from kubeglobe.agent.manifests import own_bindings_by_namespace
from kubeglobe.api.meta import SYSTEM_NAMESPACE
from kubeglobe.cli.common import KubeconfigOpt, cli_errors, run_until_signalled
from kubeglobe.kube.client import KubeconfigError, async_client, load_kubeconfig
from kubeglobe.kube.rest import read_credentials, rest_target
from kubeglobe.kube.secrets import required_secret_text


async def _from_secret(name: str, kubeconfig: Path | None) -> None:
    config = load_kubeconfig(path=kubeconfig)
    client = async_client(config)
    secret = await client.get(Secret, name, namespace=SYSTEM_NAMESPACE)

    def text(key: str) -> str:
        return required_secret_text(secret.data, key, secret=name)

    settings = AgentSettings(hub_url=text("hub-url").rstrip("/"),
                             hub_ca=ssl.create_default_context(cadata=text("hub-ca.crt")),
                             cluster=text("cluster"))
    await own_bindings_by_namespace(client)
    store: CredentialStore = SecretStore(client, name=name)
    await run_agent(settings=settings, store=store, target=rest_target(config), client=client,
                    ca_pem=read_credentials(config).ca)


async def _standalone(*, hub_url: str, hub_ca: Path, cluster: str, state_dir: Path,
                      kubeconfig: Path | None) -> None:
    settings = AgentSettings(hub_url=hub_url.rstrip("/"),
                             hub_ca=ssl.create_default_context(cafile=str(hub_ca)),
                             cluster=cluster)
    config = load_kubeconfig(path=kubeconfig)
    await run_agent(settings=settings, store=FileStore(state_dir), target=rest_target(config),
                    client=async_client(config), ca_pem=read_credentials(config).ca)


def agent_command(
    from_secret: Annotated[str | None, typer.Option(
        help="In a cluster: read hub URL, CA, cluster name and bootstrap token from this "
             "Secret in kubeglobe-system, and keep the credential there.")] = None,
    hub_url: Annotated[str | None, typer.Option(help="The platform API URL.")] = None,
    hub_ca: Annotated[Path | None, typer.Option(help="CA of the platform API.")] = None,
    cluster: Annotated[str | None, typer.Option(help="This cluster's name on the hub.")] = None,
    state_dir: Annotated[Path | None, typer.Option(
        help="Outside a cluster: directory with `bootstrap-token`; the credential goes "
             "there too.")] = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Dial the hub, keep the reverse tunnel, serve the hub's requests to this cluster."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "httpx2", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with cli_errors(KubeconfigError):
        if from_secret is not None:
            run_until_signalled(_from_secret(from_secret, kubeconfig))
        elif hub_url and hub_ca and cluster and state_dir:
            run_until_signalled(_standalone(hub_url=hub_url, hub_ca=hub_ca, cluster=cluster,
                                            state_dir=state_dir, kubeconfig=kubeconfig))
        else:
            raise typer.BadParameter("pass --from-secret, or all of --hub-url, --hub-ca, "
                                     "--cluster and --state-dir")
