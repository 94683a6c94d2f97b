"""Field types of the spec documents, and the strict base model they share.

Each type wraps one check from ``kube`` (names, quantities, durations) or ``naming`` so that pydantic
reports a bad value at the field's own dotted path; ``Model`` makes every document strict (unknown keys
are errors, no coercion, camelCase keys in YAML).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from vcluster_mgr import kube, naming

# ---------------------------------------------------------------------------------------------
# Field types: each wraps one check from ``kube`` or ``naming`` so pydantic reports it at the field's path
# ---------------------------------------------------------------------------------------------


def checked(check: Callable[[str], object]) -> Callable[[str], str]:
    def validate(value: str) -> str:
        try:
            check(value)
        except ValueError as exc:
            raise PydanticCustomError("vcm", "{reason}", {"reason": str(exc)}) from None
        return value

    return validate


def _quantity(raw: object) -> str:
    """Parse a quantity (string or number), refuse negatives, and keep its canonical text."""
    try:
        quantity = kube.parse_quantity(raw)
    except ValueError as exc:
        raise PydanticCustomError("vcm", "{reason}", {"reason": str(exc)}) from None
    if quantity.value < 0:
        raise PydanticCustomError("vcm", "{reason}", {"reason": "must not be negative"})
    return str(quantity)


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise PydanticCustomError(
            "vcm", "{reason}", {"reason": f"is not a network in CIDR notation such as 10.20.0.0/16 ({exc})"}
        ) from None


def _duration(value: str) -> str:
    checked(kube.parse_duration)(value)
    return value


def json_schema_extra(**schema: Any) -> dict[str, Any]:
    return {"json_schema_extra": schema}


DnsLabel = Annotated[
    str,
    AfterValidator(checked(kube.check_dns_label)),
    Field(**json_schema_extra(pattern=f"^{kube.DNS1123_LABEL_PATTERN}$", maxLength=kube.DNS1123_LABEL_MAX)),
]
SpecLabelKey = Annotated[str, AfterValidator(checked(naming.check_spec_label_key))]
LabelKey = Annotated[str, AfterValidator(checked(kube.check_label_key))]
LabelValue = Annotated[
    str,
    AfterValidator(checked(kube.check_label_value)),
    Field(**json_schema_extra(maxLength=kube.DNS1123_LABEL_MAX)),
]
Quantity = Annotated[
    str,
    BeforeValidator(_quantity),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": f"^{kube.QUANTITY_PATTERN}$"},
                {"type": "number", "minimum": 0},
            ]
        }
    ),
]
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]
Port = Annotated[int, Field(ge=1, le=65535)]
ObjectResource = Annotated[
    str,
    AfterValidator(checked(kube.check_dns_subdomain)),
    Field(**json_schema_extra(maxLength=kube.DNS1123_SUBDOMAIN_MAX)),
]
"""A resource as ResourceQuota's count/<resource> names it: configmaps, jobs.batch, widgets.example.com."""
Cidr = Annotated[str, AfterValidator(_cidr)]
Duration = Annotated[
    str, AfterValidator(_duration), Field(**json_schema_extra(pattern=f"^{kube.DURATION_PATTERN}$", minLength=2))
]
PrintableName = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(checked(kube.check_printable))]
Role = Literal["admin", "edit", "view"]
PodSecurityLevel = Literal["restricted", "baseline"]
IsolationLevel = Literal["strict", "namespace", "none"]

_QUOTA_SPLIT = (
    "The tenant total is split across the tenant's namespaces by quota.shares (evenly when it is left out, "
    "all to the first namespace for a tenant with a control plane): each namespace's ResourceQuota gets "
    "total * share / sum-of-shares"
)
SPLIT_QUANTITY = f"{_QUOTA_SPLIT}, rounded down to 1m (CPU) or 1 byte (memory, storage)."
SPLIT_COUNT = f"{_QUOTA_SPLIT}, rounded down to a whole number but at least 1 unless the total or the share is 0."


class Model(BaseModel):
    """Strict: unknown keys are errors, no type coercion, camelCase keys in YAML."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        validate_default=True,
    )
