"""Kubernetes' name rules, DNS-1123 label and subdomain, as typed strings.

A bad name is refused with 422 before the global cluster is asked, with the rule it
breaks and a name that passes; the rules are never looser than Kubernetes' own. The
JSON schema carries each rule's pattern and length, so /openapi.json documents it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

LABEL_MAX = 63
SUBDOMAIN_MAX = 253
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = rf"{_LABEL}(\.{_LABEL})*"
LABEL_PATTERN = f"^{_LABEL}$"  # as JSON Schema and OpenAPI write it (ECMA: $ is the end)
SUBDOMAIN_PATTERN = f"^{_SUBDOMAIN}$"

Rule = Literal["label", "subdomain"]
_WORDING: dict[Rule, str] = {
    "label": f"at most {LABEL_MAX} lowercase letters, digits and '-', starting and ending "
             "with a letter or digit",
    "subdomain": f"at most {SUBDOMAIN_MAX} lowercase letters, digits, '-' and '.', each "
                 "'.'-separated part starting and ending with a letter or digit",
}


def _fits(name: str, rule: Rule) -> bool:
    # fullmatch, not match with `$`: Python's `$` also matches before a final newline
    if rule == "label":
        return len(name) <= LABEL_MAX and re.fullmatch(_LABEL, name) is not None
    return len(name) <= SUBDOMAIN_MAX and re.fullmatch(_SUBDOMAIN, name) is not None


def suggest(name: str, rule: Rule) -> str:
    """A name close to `name` that follows `rule` (pure)."""
    allowed = "a-z0-9." if rule == "subdomain" else "a-z0-9"
    text = re.sub(f"[^{allowed}]+", "-", name.lower())
    if rule == "subdomain":
        parts = [p.strip("-") for p in text.split(".")]
        text = ".".join(p for p in parts if p)[:SUBDOMAIN_MAX]
        text = ".".join(p.strip("-") for p in text.split(".") if p.strip("-"))
    else:
        text = text.strip("-")[:LABEL_MAX].strip("-")
    return text or "my-name"


def name_problem(name: str, *, rule: Rule, what: str = "name") -> str | None:
    """Why `name` breaks `rule` and what to use instead, or None if it follows it.
    `what` says which name it is ("cluster name")."""
    if _fits(name, rule):
        return None
    kind = "DNS-1123 label" if rule == "label" else "DNS-1123 subdomain"
    shown = repr(name[:80]) + ("..." if len(name) > 80 else "")
    return (f"{what} {shown} is not a valid {kind}: use {_WORDING[rule]} "
            f"(e.g. {suggest(name, rule)!r})")


@dataclass(frozen=True)
class NameRule:
    """Pydantic metadata: the string must follow `rule`; documented with its pattern."""

    rule: Rule
    what: str = "name"

    def check(self, value: str) -> str:
        problem = name_problem(value, rule=self.rule, what=self.what)
        if problem is not None:
            raise ValueError(problem)
        return value

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        found = handler(schema)
        label = self.rule == "label"
        found.update(
            minLength=1, maxLength=LABEL_MAX if label else SUBDOMAIN_MAX,
            pattern=LABEL_PATTERN if label else SUBDOMAIN_PATTERN)
        found.setdefault("description", f"{self.what}: a DNS-1123 {self.rule} ("
                         f"{_WORDING[self.rule]})")
        return found


# The platform's own kinds: their names become parts of other names (Secrets, namespace
# prefixes, HAProxy backends, label values), so they are labels.
ClusterName = Annotated[str, NameRule("label", "cluster name")]
UserName = Annotated[str, NameRule("label", "user name")]
GroupName = Annotated[str, NameRule("label", "group name")]
ProjectName = Annotated[str, NameRule("label", "project name")]
# Names nothing else is made from follow Kubernetes' rule for any custom resource.
ProjectNamespaceName = Annotated[str, NameRule("subdomain", "project namespace name")]
RoleBindingName = Annotated[str, NameRule("subdomain", "role binding name")]
