"""The JSON schemas the OpenAPI description's routes refer to (`#/components/schemas/...`)."""
from __future__ import annotations

from typing import Any

from shared.model import ProfileType


def _reply(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["code", "body"],
        "properties": {"code": {"type": "integer", "enum": [200]}, "body": body},
    }


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["code", "error"],
        "properties": {
            "code": {"type": "integer", "description": "Equal to the HTTP status"},
            "error": {"type": "string"},
        },
    },
    "Label": {
        "type": "object",
        "required": ["key", "value"],
        "properties": {"key": {"type": "string"}, "value": {"type": "string"}},
    },
    "Profile": {
        "type": "object",
        "required": ["id", "type", "service", "created_at"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9a-v]{20}$"},
            "type": {"type": "string", "enum": [t.value for t in ProfileType]},
            "service": {"type": "string"},
            "labels": {"type": "array", "items": {"$ref": "#/components/schemas/Label"},
                       "description": "Omitted when empty"},
            "created_at": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"},
        },
    },
    "ConnectError": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string", "example": "invalid_argument"}, "message": {"type": "string"}},
    },
    "PushRequest": {"type": "object", "properties": {"series": {"type": "array", "items": {
        "type": "object", "properties": {
            "labels": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "value": {"type": "string"}}}},
            "samples": {"type": "array", "items": {"type": "object", "properties": {
                "rawProfile": {"type": "string", "format": "byte"}, "ID": {"type": "string"}}}},
        }}}}},
    "ProfileReply": _reply({"$ref": "#/components/schemas/Profile"}),
    "ProfileListReply": _reply({"type": "array", "items": {"$ref": "#/components/schemas/Profile"}}),
    "ServiceListReply": _reply({"type": "array", "items": {"type": "string"}}),
    "ObjectReply": _reply({"type": "object"}),
    "VersionReply": _reply({
        "type": "object",
        "required": ["version", "commit", "build_time"],
        "properties": {"version": {"type": "string"}, "commit": {"type": "string"},
                       "build_time": {"type": "string"}},
    }),
}
