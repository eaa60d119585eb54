"""Kubernetes resource quantities ("500m", "8Gi", "2") as numbers, and back."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6,
          "G": 10**9, "T": 10**12, "m": 10**-3}


def parse_quantity(text: str) -> float:
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * _UNITS[suffix]
    return float(text)


def format_quantity(resource: str, value: float) -> str:
    if resource == "memory" or resource.endswith("storage"):
        return f"{round(value / 2**20)}Mi"
    if resource == "cpu":
        return f"{round(value * 1000)}m" if value % 1 else str(int(value))
    return str(int(value))


def not_a_bool(value: object) -> object:
    if isinstance(value, bool):  # an int to Python and pydantic, never a count to a person
        raise ValueError(f"must be a whole number, not {str(value).lower()}")
    return value


# A count (0 or more): true and false refused. Bounds go inside the Annotated, so that the
# JSON schema (and the CRDs made from it) says them as `minimum`/`maximum`.
WholeNumber = Annotated[int, Field(ge=0), BeforeValidator(not_a_bool)]
