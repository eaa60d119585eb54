"""CustomResourceDefinitions generated from the pydantic models: one source of truth.

`structural_schema` turns a model's JSON Schema into the OpenAPI v3 "structural" subset
Kubernetes accepts: references inlined, `anyOf [X, null]` as `nullable`, no titles.
`crd_manifest` wraps it as an apiextensions.k8s.io/v1 CRD. Both are pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from kubeglobe.api.meta import GROUP, VERSION

JSON = dict[str, Any]
_DROP = {"title", "$defs", "discriminator"}


def _inline(node: Any, defs: JSON) -> Any:
    if isinstance(node, list):
        return [_inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[1]]
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _inline({**target, **extra}, defs)
    out: JSON = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: _inline(v, defs) for name, v in value.items()}
        else:
            out[key] = _inline(value, defs)
    any_of = out.pop("anyOf", None)
    if any_of is not None:
        others = [s for s in any_of if s.get("type") != "null"]
        if len(others) != 1:
            raise ValueError(f"cannot express anyOf {any_of} in a structural schema")
        merged = {**others[0], **out}
        if len(others) < len(any_of):
            merged["nullable"] = True
        if merged.get("default", 0) is None:
            merged.pop("default")
        return merged
    if "default" in out and out["default"] in ("", [], {}, None):
        # Empty defaults add nothing the models do not fill in, and some clients drop
        # them on the way, leaving an invalid `default: null`.
        del out["default"]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "properties" in out and out.get("additionalProperties") is False:
        # Structural schemas forbid properties beside additionalProperties; unknown
        # fields are pruned by the apiserver instead.
        del out["additionalProperties"]
    return out


def structural_schema(model: type[BaseModel]) -> JSON:
    raw = model.model_json_schema(mode="validation")
    defs = raw.get("$defs", {})
    schema: JSON = _inline(raw, defs)
    schema["type"] = "object"
    return schema


@dataclass(frozen=True)
class CrdNames:
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...] = ()
    scope: str = "Cluster"


def crd_manifest(
    *, model: type[BaseModel], names: CrdNames, printer_columns: list[JSON] | None = None
) -> JSON:
    schema = structural_schema(model)
    properties = schema.setdefault("properties", {})
    properties["apiVersion"] = {"type": "string"}
    properties["kind"] = {"type": "string"}
    properties["metadata"] = {"type": "object"}
    schema.pop("additionalProperties", None)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{names.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": names.scope,
            "names": {
                "kind": names.kind,
                "plural": names.plural,
                "singular": names.singular,
                "listKind": f"{names.kind}List",
                "shortNames": list(names.short_names),
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": printer_columns or [],
                }
            ],
        },
    }
