"""The JSON Schema of the Tenant and Policy documents, generated from the models (``vcm schema``)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import (
    BaseModel,
)
from pydantic.json_schema import GenerateJsonSchema

from vcluster_mgr.spec import policy_model, tenant_model

# ---------------------------------------------------------------------------------------------
# JSON Schema
# ---------------------------------------------------------------------------------------------


class _Schema(GenerateJsonSchema):
    """Pydantic's generator without the auto-made per-field titles (descriptions say it better)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _json_schema(model: type[BaseModel], schema_id: str) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_Schema)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": schema_id, **schema}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a Tenant document, generated from the model (committed as schema/tenant.schema.json)."""
    return _json_schema(tenant_model.Tenant, "https://vcluster-mgr.dev/schema/v1alpha1/tenant.schema.json")


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema of a Policy document (committed as schema/policy.schema.json)."""
    return _json_schema(policy_model.Policy, "https://vcluster-mgr.dev/schema/v1alpha1/policy.schema.json")


def schema_text(kind: Literal["tenant", "policy"] = "tenant") -> str:
    """The schema as the exact text committed under schema/ (2-space JSON, trailing newline)."""
    schema = json_schema() if kind == "tenant" else policy_json_schema()
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
