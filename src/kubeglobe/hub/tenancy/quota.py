"""Project quotas add up: the namespaces of a project on a cluster never exceed it.

`check_namespace_fits` is the one rule, pure: it refuses a namespace quota that would
push the project's total on that cluster past the project's quota, and says by how much
with the numbers that matter, so the person can pick a value that fits.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubeglobe.api.quantity import format_quantity, parse_quantity
from kubeglobe.api.tenancy import ProjectNamespaceSpec, ProjectSpec, Quota

# Quota field -> the ResourceQuota `hard` key it becomes in the namespace.
HARD_KEYS = {
    "cpu": "requests.cpu",
    "memory": "requests.memory",
    "storage": "requests.storage",
    "persistentvolumeclaims": "persistentvolumeclaims",
    "pods": "pods",
}


class QuotaExceeded(ValueError):
    pass


@dataclass(frozen=True)
class Sibling:
    name: str
    quota: Quota


def amount(quota: Quota, resource: str) -> float | None:
    value = getattr(quota, resource)
    return None if value is None else parse_quantity(str(value))


def _show(resource: str, value: float) -> str:
    return format_quantity("memory" if resource in ("memory", "storage") else resource, value)


def check_namespace_fits(*, name: str, spec: ProjectNamespaceSpec, project: ProjectSpec,
                         siblings: list[Sibling]) -> None:
    """Raise QuotaExceeded unless the namespace fits its project's quota on its cluster."""
    entry = next((c for c in project.clusters if c.name == spec.cluster), None)
    if entry is None:
        raise QuotaExceeded(
            f"project {spec.project} does not include cluster {spec.cluster}; add the cluster "
            f"to the project first (it spans: "
            f"{', '.join(c.name for c in project.clusters) or 'no clusters'})")
    problems = []
    for resource in HARD_KEYS:
        limit = amount(entry.quota, resource)
        if limit is None:
            continue
        asked = amount(spec.quota, resource)
        if asked is None:
            problems.append(f"{resource}: the project limits it to {_show(resource, limit)} on "
                            f"{spec.cluster}, so the namespace needs a {resource} quota")
            continue
        held = {s.name: amount(s.quota, resource) or 0.0 for s in siblings if s.name != name}
        used = sum(held.values())
        if used + asked > limit + 1e-9:
            detail = ", ".join(f"{n} {_show(resource, v)}" for n, v in sorted(held.items()))
            problems.append(
                f"{resource}: asks {_show(resource, asked)}, project {spec.project} allows "
                f"{_show(resource, limit)} on {spec.cluster} and its other namespaces hold "
                f"{_show(resource, used)}" + (f" ({detail})" if detail else "")
                + f", so at most {_show(resource, max(0.0, limit - used))} is left")
    if problems:
        raise QuotaExceeded(f"namespace {spec.namespace} does not fit: " + "; ".join(problems))


def hard_limits(quota: Quota) -> dict[str, str]:
    """The ResourceQuota `hard` map of a namespace quota (unset entries are omitted)."""
    return {HARD_KEYS[r]: str(getattr(quota, r)) for r in HARD_KEYS
            if getattr(quota, r) is not None}


def check_project_quota(*, project: str, spec: ProjectSpec,
                        namespaces: list[tuple[str, ProjectNamespaceSpec]]) -> None:
    """Raise QuotaExceeded if the project's namespaces already hold more than a changed
    project quota allows on some cluster."""
    problems = []
    for entry in spec.clusters:
        mine = [(n, s) for n, s in namespaces if s.cluster == entry.name]
        for resource in HARD_KEYS:
            limit = amount(entry.quota, resource)
            if limit is None or not mine:
                continue
            held = {n: amount(s.quota, resource) for n, s in mine}
            if any(v is None for v in held.values()):
                unset = sorted(n for n, v in held.items() if v is None)
                problems.append(f"{resource} on {entry.name}: namespaces {', '.join(unset)} "
                                f"have no {resource} quota; give them one first")
                continue
            used = sum(v or 0.0 for v in held.values())
            if used > limit + 1e-9:
                problems.append(f"{resource} on {entry.name}: the namespaces hold "
                                f"{_show(resource, used)}, more than {_show(resource, limit)}")
    if problems:
        raise QuotaExceeded(f"project {project}'s quota would be below what its namespaces "
                            "hold: " + "; ".join(problems) + "; lower their quotas first")
