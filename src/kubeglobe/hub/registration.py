"""Register mode on the hub: one-time bootstrap tokens and per-cluster agent credentials.

`kubeglobe cluster register NAME` creates the Cluster and a bootstrap token (valid 24 h,
usable once). The agent trades it for a credential: the token's Secret is deleted with
a resourceVersion precondition, so two agents racing with one token get one winner.
Both are stored as SHA-256 hashes in Secrets owned by the Cluster.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.core_v1 import Secret

from kubeglobe.api.cluster import CLUSTER_KIND
from kubeglobe.api.meta import API_VERSION, CLUSTER_LABEL, SYSTEM_NAMESPACE
from kubeglobe.hub.missing import missing_ok
from kubeglobe.hub.onboarding import OnboardingError, check_name
from kubeglobe.hub.tokens import sha256_hex
from kubeglobe.kube.client import KUBE_ERRORS
from kubeglobe.kube.microtime import format_time, parse_time
from kubeglobe.kube.resources import ClusterCR
from kubeglobe.kube.secrets import b64, secret_text

log = logging.getLogger("kubeglobe.registration")
BOOTSTRAP_TYPE = "kubeglobe.io/bootstrap-token"
CREDENTIAL_TYPE = "kubeglobe.io/agent-credential"
BOOTSTRAP_TTL = dt.timedelta(hours=24)


def bootstrap_secret(cluster: str) -> str:
    return f"cluster-{cluster}-bootstrap"


def credential_secret(cluster: str) -> str:
    return f"cluster-{cluster}-agent"


def _read(data: dict[str, str] | None, key: str) -> str:
    return secret_text(data, key) or ""


def _owned(cluster: dict[str, Any]) -> list[OwnerReference]:
    meta = cluster.get("metadata") or {}
    return [OwnerReference(apiVersion=API_VERSION, kind=CLUSTER_KIND,
                           name=str(meta.get("name", "")), uid=str(meta.get("uid", "")))]


async def _put_secret(hub: AsyncClient, *, name: str, kind: str, data: dict[str, str],
                      owner: dict[str, Any], cluster: str) -> None:
    secret = Secret(
        metadata=ObjectMeta(name=name, namespace=SYSTEM_NAMESPACE,
                            labels={CLUSTER_LABEL: cluster},
                            ownerReferences=_owned(owner)),
        type=kind, data={k: b64(v) for k, v in data.items()})
    try:
        await hub.create(secret)
    except ApiError as e:
        if e.status.code != 409:
            raise
        await hub.replace(secret)


async def issue_bootstrap_token(*, hub: AsyncClient, cluster: str,
                                now: dt.datetime | None = None) -> str:
    """A fresh one-time token for `cluster` (replacing any earlier unused one)."""
    obj = dict(await hub.get(ClusterCR, cluster))
    token = f"kgb_{secrets.token_urlsafe(24)}"
    expires = (now or dt.datetime.now(dt.UTC)) + BOOTSTRAP_TTL
    await _put_secret(hub, name=bootstrap_secret(cluster), kind=BOOTSTRAP_TYPE, owner=obj,
                      cluster=cluster, data={"sha256": sha256_hex(token),
                                             "expires": format_time(expires)})
    return token


async def create_registered_cluster(*, hub: AsyncClient, name: str,
                                    display_name: str | None = None) -> tuple[dict[str, Any],
                                                                              str]:
    check_name(name)
    spec: dict[str, Any] = {"mode": "register"}
    if display_name:
        spec["displayName"] = display_name
    try:
        created = dict(await hub.create(ClusterCR(metadata=ObjectMeta(name=name), spec=spec)))
    except ApiError as e:
        if e.status.code == 409:
            raise OnboardingError(f"cluster {name} already exists; choose another name or "
                                  "unregister it first", status=409) from e
        raise
    try:
        token = await issue_bootstrap_token(hub=hub, cluster=name)
    except Exception:  # whatever failed, undo the half-made cluster; the error goes on
        try:
            await hub.delete(ClusterCR, name)
        except KUBE_ERRORS as e:
            log.warning("registering cluster %s failed and so did removing it again "
                        "(delete it by hand): %s: %s", name, type(e).__name__, e)
        raise
    return created, token


async def redeem_bootstrap_token(*, hub: AsyncClient, cluster: str, token: str,
                                 now: dt.datetime | None = None) -> str:
    """Check and consume the token; returns the cluster's new agent credential."""
    refused = OnboardingError(
        f"bootstrap token for cluster {cluster} is invalid or was already used; issue a new "
        f"one with `kubeglobe cluster register {cluster} --new-token`", status=401)
    secret = await missing_ok(hub.get(Secret, bootstrap_secret(cluster),
                                      namespace=SYSTEM_NAMESPACE))
    if (secret is None or secret.type != BOOTSTRAP_TYPE or _read(secret.data, "used")
            or not hmac.compare_digest(_read(secret.data, "sha256"), sha256_hex(token))):
        raise refused
    expires = parse_time(_read(secret.data, "expires"))
    if (now or dt.datetime.now(dt.UTC)) >= expires:
        raise OnboardingError(
            f"bootstrap token for cluster {cluster} expired at {expires:%Y-%m-%d %H:%M} UTC; "
            f"issue a new one with `kubeglobe cluster register {cluster} --new-token`",
            status=410)
    # Mark it used with the resourceVersion we read (an optimistic lock): of two agents
    # racing with one token, the second gets a conflict.
    secret.data = {**(secret.data or {}), "used": b64("true")}
    try:
        await hub.replace(secret)
    except ApiError as e:
        if e.status.code in (404, 409):
            raise refused from e
        raise
    await hub.delete(Secret, bootstrap_secret(cluster), namespace=SYSTEM_NAMESPACE)
    credential = f"kga_{secrets.token_urlsafe(32)}"
    owner = dict(await hub.get(ClusterCR, cluster))
    await _put_secret(hub, name=credential_secret(cluster), kind=CREDENTIAL_TYPE, owner=owner,
                      cluster=cluster, data={"sha256": sha256_hex(credential)})
    return credential


async def check_agent_credential(*, hub: AsyncClient, cluster: str, credential: str) -> bool:
    secret = await missing_ok(hub.get(Secret, credential_secret(cluster),
                                      namespace=SYSTEM_NAMESPACE))
    return secret is not None and secret.type == CREDENTIAL_TYPE and hmac.compare_digest(
        _read(secret.data, "sha256"), sha256_hex(credential))
