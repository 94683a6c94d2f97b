"""Turning pydantic's validation errors into ``errors.FieldError``: dotted paths, short values, valid keys."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ValidationError,
)

from vcluster_mgr import errors

# ---------------------------------------------------------------------------------------------
# Turning pydantic's errors into FieldErrors
# ---------------------------------------------------------------------------------------------


def format_path(loc: Iterable[str | int]) -> str:
    """``('spec', 'owners', 1, 'role')`` -> ``spec.owners[1].role``; odd keys are quoted: ``labels["a/b"]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.replace("-", "").replace("_", "").isalnum() and part.isascii() and not part[:1].isdigit():
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out or "(document)"


def show(value: object, limit: int = 80) -> str:
    """A short, one-line rendering of a bad value for an error message."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # e.g. a recursive structure
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unwrap(annotation: Any) -> Any:
    """Strip ``X | None``, ``Optional`` and ``Annotated`` down to the one interesting type."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            rest = [a for a in get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class found at ``loc`` inside ``root``, used to list the keys valid there."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int) and get_origin(current) is list:
            current = get_args(current)[0]
        elif isinstance(part, str) and isinstance(current, type) and issubclass(current, BaseModel):
            fields = {f.alias or name: f for name, f in current.model_fields.items()}
            if part not in fields:
                return None
            current = fields[part].annotation
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


_SIMPLE = {
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "dict_type": "expected a mapping",
    "list_type": "expected a list",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "bool_type": "expected true or false",
}


def field_errors(exc: ValidationError, root: type[BaseModel], source: str | None) -> list[errors.FieldError]:
    out = []
    for item in exc.errors(include_url=False):
        loc = list(item["loc"])
        is_key = bool(loc) and loc[-1] == "[key]"
        if is_key:
            loc.pop()
        kind, value = item["type"], item.get("input")
        if kind == "extra_forbidden":
            model = _model_at(root, loc[:-1])
            valid = ", ".join(f.alias or n for n, f in model.model_fields.items()) if model else ""
            message = f"unknown key {show(loc[-1])}" + (f"; valid keys here: {valid}" if valid else "")
        elif kind == "missing":
            message = "is required but missing"
        elif kind == "vcm":
            message = f"{show(value)} {item['ctx']['reason']}"
        elif kind == "invalid_key":
            message = f"key {show(value)} must be a string"
            is_key = False
        else:
            message = f"{_SIMPLE.get(kind, item['msg'])}, got {show(value)}"
        if is_key:
            message = f"key {message}"
        out.append(errors.FieldError(format_path(loc), message, source))
    return out
