"""Kubernetes clients built from kubeconfigs, trusting only the cluster's own CA.

This machine sets SSL_CERT_FILE and friends to the system bundle; a client that trusts
the environment ignores a cluster's CA. Every client here turns environment trust off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2  # lightkube 1.x is built on httpx2, httpx's successor
import yaml
from lightkube import AsyncClient, Client, KubeConfig
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core.exceptions import ConfigError

from kubeglobe.api.meta import FIELD_MANAGER

DEFAULT_TIMEOUT = httpx2.Timeout(10.0)

# What a call through a lightkube client raises when the cluster refuses it (ApiError,
# an httpx2.HTTPStatusError) or cannot be reached (httpx2's transport errors, and
# OSError from sockets and TLS). A loop that outlives a failing cluster catches these.
KUBE_ERRORS: tuple[type[Exception], ...] = (httpx2.HTTPError, OSError)

# What lightkube raises for a kubeconfig it cannot use: its own ConfigError, a file it
# cannot read, YAML it cannot parse, and (since it indexes the raw mapping) lookup and
# type errors and msgspec's ValidationError (a ValueError) for a misshapen one.
_BAD_KUBECONFIG = (ConfigError, OSError, yaml.YAMLError, LookupError, TypeError,
                   AttributeError, ValueError)


class KubeconfigError(ValueError):
    pass


def load_kubeconfig(*, path: Path | None = None, data: dict[str, Any] | None = None,
                    context: str | None = None) -> SingleConfig:
    """A kubeconfig's current (or named) context; a clear error if it is unusable."""
    try:
        if path is not None:
            config = KubeConfig.from_file(str(path))
        elif data is not None:
            config = KubeConfig.from_dict(data)
        else:
            config = KubeConfig.from_env()
        single = config.get(context_name=context)
    except _BAD_KUBECONFIG as e:
        where = str(path) if path is not None else "the given kubeconfig"
        raise KubeconfigError(f"{where} is not a usable kubeconfig: {e}") from e
    if single is None:
        raise KubeconfigError("the kubeconfig has no current context; pass a context name")
    return single


def sync_client(config: SingleConfig, *, timeout: httpx2.Timeout = DEFAULT_TIMEOUT) -> Client:
    return Client(config, field_manager=FIELD_MANAGER, trust_env=False, timeout=timeout)


def async_client(config: SingleConfig, *,
                 timeout: httpx2.Timeout = DEFAULT_TIMEOUT) -> AsyncClient:
    return AsyncClient(config, field_manager=FIELD_MANAGER, trust_env=False, timeout=timeout)
