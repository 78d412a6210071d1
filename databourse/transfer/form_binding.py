"""What an approval form shows, bound to the question it asks: its description and its schema.

When a publish run suspends, the pipeline keeps (in the pending row's detail) the sha256 of the
form's description (the markdown the approver reads: facts, rule, route) and of the whole JSON
schema Prefect saves for the form (field titles and descriptions, the decision's choices and the
fields each requires, the constants). Anyone who can write the Prefect API can replace
either input; an answer given while either differs from what the pipeline wrote is refused
(audited) and asked again, and `bourse approvals list` flags the form.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "FORM_PARTS",
    "description_sha256",
    "form_problems",
    "replaced_parts",
    "schema_sha256",
]

# pending detail key -> what an operator calls that part of the form
FORM_PARTS = {"description_sha256": "description", "schema_sha256": "schema"}


def description_sha256(description: object) -> str:
    """The sha256 of a form description as text ("" for none)."""
    text = description if isinstance(description, str) else ""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def schema_sha256(schema: object) -> str:
    """The sha256 of a form's JSON schema as canonical JSON (sorted keys; `null` for none)."""
    text = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def replaced_parts(pending: Mapping[str, Any], shown: Mapping[str, object]) -> dict[str, str]:
    """The parts of the form Prefect holds that are not what the pipeline wrote: part name ->
    why (sha256 shown, sha256 written); {} when the form is as written.

    `shown`: the form's current `description` (text or None) and `schema` (decoded JSON or
    None), as read from the Prefect API. A part whose hash the pending row does not hold (a
    form opened before that part was bound) is not checked.
    """
    detail = pending.get("detail") or {}
    actual = {
        "description_sha256": description_sha256(shown.get("description")),
        "schema_sha256": schema_sha256(shown.get("schema")),
    }
    out = {}
    for field, part in FORM_PARTS.items():
        expected = detail.get(field)
        if expected and actual[field] != expected:
            out[part] = f"sha256 {actual[field][:16]}, the pipeline wrote {str(expected)[:16]}"
    return out


def form_problems(pending: Mapping[str, Any], shown: Mapping[str, object]) -> list[str]:
    """Why the form Prefect holds is not the one the pipeline wrote (else [])."""
    return [
        f"the {part} shown on form {pending['suspend_key']} was replaced through the Prefect "
        f"API ({why}): the approver may have read other facts or fields; answer again on the "
        "new form"
        for part, why in replaced_parts(pending, shown).items()
    ]
