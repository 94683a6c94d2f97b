"""The JSON Schema of the Tenant and Policy documents, generated from the models (``vcm schema``), and the
one way every vcm document's schema is made (the platform config's too)."""

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


TENANT_SCHEMA_ID = "https://vcluster-mgr.dev/schema/v1alpha1/tenant.schema.json"
POLICY_SCHEMA_ID = "https://vcluster-mgr.dev/schema/v1alpha1/policy.schema.json"


class _Schema(GenerateJsonSchema):
    """Pydantic's generator without the auto-made per-field titles (descriptions say it better)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def model_json_schema(model: type[BaseModel], schema_id: str) -> dict[str, Any]:
    """The JSON Schema of a document ``model`` (draft 2020-12, titled by ``schema_id``), as vcm commits them.

    Public for the documents defined above ``spec`` (the platform config), so every schema is made alike.
    """
    schema = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_Schema)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": schema_id, **schema}


def model_schema_text(model: type[BaseModel], schema_id: str) -> str:
    """``model_json_schema`` as the exact text committed under schema/ (2-space JSON, trailing newline)."""
    return json.dumps(model_json_schema(model, schema_id), indent=2, ensure_ascii=False) + "\n"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a Tenant document, generated from the model (committed as schema/tenant.schema.json)."""
    return model_json_schema(tenant_model.Tenant, TENANT_SCHEMA_ID)


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema of a Policy document (committed as schema/policy.schema.json)."""
    return model_json_schema(policy_model.Policy, POLICY_SCHEMA_ID)


def schema_text(kind: Literal["tenant", "policy"] = "tenant") -> str:
    """The schema as the exact text committed under schema/ (2-space JSON, trailing newline)."""
    if kind == "tenant":
        return model_schema_text(tenant_model.Tenant, TENANT_SCHEMA_ID)
    return model_schema_text(policy_model.Policy, POLICY_SCHEMA_ID)
