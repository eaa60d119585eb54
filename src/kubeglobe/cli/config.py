"""The CLI's saved login: server URL, token and the server's CA, in one YAML file.

The file is `$KUBEGLOBE_CONFIG` or `~/.config/kubeglobe/config.yaml`, written 0600
because it holds a token. `ApiClient` is the only way CLI commands talk to the server.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import BaseModel

from kubeglobe.files import write_atomic


class CliError(RuntimeError):
    pass


class CliConfig(BaseModel):
    server: str
    token: str
    ca_file: str | None = None


def config_path() -> Path:
    return Path(os.environ.get("KUBEGLOBE_CONFIG", Path.home() / ".config/kubeglobe/config.yaml"))


def load_config() -> CliConfig:
    path = config_path()
    if not path.exists():
        raise CliError(f"not logged in ({path} is missing); run `kubeglobe login --server URL "
                       "--token TOKEN`")
    return CliConfig.model_validate(yaml.safe_load(path.read_text()))


def save_config(config: CliConfig) -> Path:
    path = config_path()
    write_atomic(path, yaml.safe_dump(config.model_dump()).encode())
    return path


def _tls(ca_file: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file or None)  # None: the system's CAs


def answer_of(r: httpx.Response) -> Any:
    """The JSON answer, or CliError with the server's own explanation."""
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text
        raise CliError(f"{detail} (HTTP {r.status_code})")
    return r.json() if r.content else None


class ApiClient:
    def __init__(self, config: CliConfig) -> None:
        self.config = config
        self._http = httpx.Client(
            base_url=config.server.rstrip("/"), verify=_tls(config.ca_file), trust_env=False,
            headers={"Authorization": f"Bearer {config.token}"}, timeout=30.0,
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise CliError(f"cannot reach {self.config.server}: {e}") from e
        return answer_of(r)


def login_with_password(*, server: str, ca_file: str | None, user: str,
                        password: str) -> dict[str, Any]:
    """Trade a user's name and password for a session token (the one unauthenticated
    call the CLI makes)."""
    try:
        r = httpx.post(server.rstrip("/") + "/api/v1/login", verify=_tls(ca_file),
                       trust_env=False, timeout=30.0,
                       json={"username": user, "password": password})
    except httpx.HTTPError as e:
        raise CliError(f"cannot reach {server}: {e}") from e
    answer: dict[str, Any] = answer_of(r)
    return answer
