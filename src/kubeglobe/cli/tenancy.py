"""`kubeglobe project|namespace|rolebinding ...`: projects, their namespaces and who may
do what in them."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kubeglobe.cli.common import cli_errors, out
from kubeglobe.cli.config import CliError
from kubeglobe.cli.views import Output, View, call, call_and_show

projects = typer.Typer(no_args_is_help=True, help="Projects: namespaces on several clusters "
                       "with quotas that add up.")
namespaces = typer.Typer(no_args_is_help=True, help="Namespaces of a project on a cluster.")
bindings = typer.Typer(no_args_is_help=True, help="Platform roles of users and groups.")
QUOTA_KEYS = ("cpu", "memory", "storage", "persistentvolumeclaims", "pods")
Force = Annotated[bool, typer.Option("--force", help="Also when namespaces still hold "
                                     "workloads (they are deleted with them).")]


def parse_quota(items: list[str] | None) -> dict[str, Any]:
    """`cpu=4 memory=8Gi pods=20` into a quota (pure)."""
    quota: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or key not in QUOTA_KEYS or not value:
            raise CliError(f"quota {item!r}: write KEY=VALUE with KEY one of "
                           f"{', '.join(QUOTA_KEYS)}, e.g. cpu=4 or memory=8Gi")
        quota[key] = int(value) if key in ("pods", "persistentvolumeclaims") and (
            value.isdigit()) else value
    return quota


def parse_clusters(items: list[str] | None) -> list[dict[str, Any]]:
    """`workload-1:cpu=4,memory=8Gi` or just `workload-1` into project cluster entries."""
    found = []
    for item in items or []:
        name, _, quota = item.partition(":")
        found.append({"name": name, "quota": parse_quota(quota.split(",") if quota else [])})
    return found


def _quota_text(quota: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in quota.items()) or "unlimited"


def _project_row(p: dict[str, Any]) -> list[Any]:
    clusters = p["spec"].get("clusters") or []
    return [p["name"], " ".join(f"{c['name']}({_quota_text(c.get('quota') or {})})"
                                for c in clusters), "Terminating" if p["deleting"] else ""]


PROJECTS = View(("NAME", "CLUSTERS", ""), _project_row)


ClusterOpt = Annotated[list[str] | None, typer.Option(
    "--cluster", help="NAME or NAME:cpu=4,memory=8Gi,pods=20 (repeat for each cluster).")]


@projects.command("create")
def project_create(name: str, cluster: ClusterOpt = None,
                   display_name: Annotated[str | None, typer.Option()] = None,
                   output: Output = "table") -> None:
    """Create a project spanning clusters, each with its quota (unset: unlimited)."""
    with cli_errors(CliError):
        spec = {"clusters": parse_clusters(cluster), "displayName": display_name}
        call_and_show(PROJECTS, "POST", "/api/v1/projects", output,
                      json={"name": name, "spec": spec})


@projects.command("update")
def project_update(name: str, cluster: ClusterOpt = None,
                   display_name: Annotated[str | None, typer.Option()] = None,
                   force: Force = False, output: Output = "table") -> None:
    """Set the project's clusters and quotas (the list replaces the old one; a cluster
    left out loses the project's namespaces there)."""
    with cli_errors(CliError):
        spec = {"clusters": parse_clusters(cluster), "displayName": display_name}
        call_and_show(PROJECTS, "PUT", f"/api/v1/projects/{name}", output, json=spec,
                      params={"force": str(force).lower()})


@projects.command("list")
def project_list(output: Output = "table") -> None:
    call_and_show(PROJECTS, "GET", "/api/v1/projects", output, listed=True)


@projects.command("get")
def project_get(name: str, output: Output = "table") -> None:
    call_and_show(PROJECTS, "GET", f"/api/v1/projects/{name}", output)


@projects.command("delete")
def project_delete(name: str, force: Force = False) -> None:
    """Delete a project and its namespaces on every cluster."""
    answer = call("DELETE", f"/api/v1/projects/{name}", params={"force": str(force).lower()})
    out.print(answer["status"])


# -- namespaces ------------------------------------------------------------------------
def _ns_row(n: dict[str, Any]) -> list[Any]:
    s = n["spec"]
    phase = "Terminating" if n["deleting"] else n["status"].get("phase")
    return [n["name"], s["project"], s["cluster"], s["namespace"],
            _quota_text(s.get("quota") or {}), phase, n["status"].get("message")]


NAMESPACES = View(("NAME", "PROJECT", "CLUSTER", "NAMESPACE", "QUOTA", "PHASE", "MESSAGE"),
                  _ns_row)


@namespaces.command("create")
def namespace_create(
    namespace: Annotated[str, typer.Argument(help="Starts with the project's name and a dash.")],
    project: Annotated[str, typer.Option()],
    cluster: Annotated[str, typer.Option()],
    quota: Annotated[list[str] | None, typer.Option(
        "--quota", help="KEY=VALUE (repeat): cpu, memory, storage, persistentvolumeclaims, "
        "pods")] = None,
    pod_security: Annotated[str, typer.Option(help="privileged, baseline or restricted")]
    = "baseline",
    name: Annotated[str | None, typer.Option(help="Resource name (default NAMESPACE-CLUSTER).")]
    = None,
    output: Output = "table",
) -> None:
    """Add a namespace to a project on one of its clusters."""
    with cli_errors(CliError):
        spec = {"project": project, "cluster": cluster, "namespace": namespace,
                "quota": parse_quota(quota), "podSecurity": pod_security}
        call_and_show(NAMESPACES, "POST", "/api/v1/namespaces", output,
                      json={"name": name, "spec": spec})


@namespaces.command("list")
def namespace_list(project: Annotated[str | None, typer.Option()] = None,
                   cluster: Annotated[str | None, typer.Option()] = None,
                   output: Output = "table") -> None:
    params = {k: v for k, v in (("project", project), ("cluster", cluster)) if v}
    call_and_show(NAMESPACES, "GET", "/api/v1/namespaces", output, listed=True, params=params)


@namespaces.command("get")
def namespace_get(name: str, output: Output = "table") -> None:
    call_and_show(NAMESPACES, "GET", f"/api/v1/namespaces/{name}", output)


@namespaces.command("delete")
def namespace_delete(name: str, force: Force = False) -> None:
    """Remove a project namespace from its cluster."""
    answer = call("DELETE", f"/api/v1/namespaces/{name}", params={"force": str(force).lower()})
    out.print(answer["status"])


# -- role bindings ---------------------------------------------------------------------
def _binding_row(b: dict[str, Any]) -> list[Any]:
    s = b["spec"]
    scope = s.get("scope") or {}
    where = (f"namespace {scope['namespace']}" if scope.get("namespace") else
             f"project {scope['project']}" if scope.get("project") else "platform")
    return [b["name"], s["role"], f"{s['subject']['kind']} {s['subject']['name']}", where]


BINDINGS = View(("NAME", "ROLE", "SUBJECT", "SCOPE"), _binding_row)


@bindings.command("create")
def binding_create(
    name: str,
    role: Annotated[str, typer.Option(help="platform-admin, platform-auditor, project-admin, "
                                      "developer or viewer")],
    user: Annotated[str | None, typer.Option()] = None,
    group: Annotated[str | None, typer.Option()] = None,
    project: Annotated[str | None, typer.Option(help="Project scope.")] = None,
    namespace: Annotated[str | None, typer.Option(
        help="Namespace scope: a project namespace's resource name.")] = None,
    output: Output = "table",
) -> None:
    """Give a user or a group a role, platform-wide or in a project or namespace."""
    with cli_errors(CliError):
        if (user is None) == (group is None):
            raise CliError("give exactly one of --user or --group")
        subject = {"kind": "User", "name": user} if user else {"kind": "Group", "name": group}
        scope = {k: v for k, v in (("project", project), ("namespace", namespace)) if v}
        call_and_show(BINDINGS, "POST", "/api/v1/rolebindings", output, json={
            "name": name, "spec": {"role": role, "subject": subject, "scope": scope}})


@bindings.command("list")
def binding_list(output: Output = "table") -> None:
    call_and_show(BINDINGS, "GET", "/api/v1/rolebindings", output, listed=True)


@bindings.command("delete")
def binding_delete(name: str) -> None:
    call("DELETE", f"/api/v1/rolebindings/{name}")
    out.print(f"role binding {name} deleted")


