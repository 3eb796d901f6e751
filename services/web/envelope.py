"""profefe's JSON envelope: `{"code":200,"body":...}` or `{"code":<status>,"error":"<message>"}`,
`code` always the HTTP status."""
from __future__ import annotations

import json
from typing import Any

JSON = "application/json"


def envelope(status: int, payload: Any) -> bytes:
    """The body of a reply: `payload` as the body of a 200, as the error message otherwise."""
    key = "body" if status == 200 else "error"
    return (json.dumps({"code": status, key: payload}, ensure_ascii=False) + "\n").encode()
