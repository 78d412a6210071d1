"""Why an approver's answer cannot be recorded: the form's own schema, checked in Python.

`answer_problems` validates a stored answer against the schema of `approval_rules.answer_model`
(formats included) and against the model itself, so an answer written around the form (stored
straight into the Prefect API) meets the very same rules as one the server checked; each
problem is put in words an approver acts on, never quoting a free-text value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, cast

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError as SchemaError
from pydantic import ValidationError

from databourse.config import RouteBasis, RouteSpec
from databourse.names import name_problems
from databourse.transfer.rules import (
    APPROVE,
    BOUND,
    REJECT,
    ApprovalAnswer,
    Binding,
    Decision,
    answer_model,
    approval_variant,
    decision_named,
    flat_answer,
    rejection_variant,
)

# Problems are reported in the order a person reads the form.
_ORDER = ("approver", "decision", "basis", "reference", "valid_until", "evidence_url", "reason")


def answer_problems(
    route: str,
    spec: RouteSpec | None,
    answer: Mapping[str, Any],
    today: dt.date,
    binding: Binding | None = None,
) -> list[str]:
    """Why a form's answer cannot be recorded on this route and suspension (empty when it can).

    Without a binding the suspension's constants are not checked (an answer being prepared).
    """
    flat = flat_answer(answer)
    if spec is None:
        if flat.get("decision") != APPROVE:
            return name_problems(answer.get("approver"), "approver")
        return [f"route {route!r} is not defined in the cross-border policy"]
    given = dict(answer) if binding else {k: v for k, v in answer.items() if k not in BOUND}
    given = {k: v for k, v in given.items() if v not in (None, "")}  # blank is missing
    model = answer_model(route, spec, binding)
    found = _top_problems(model, given, binding)
    chosen = given.get("decision")
    variant = _variant_of(spec, chosen) if isinstance(chosen, Mapping) else None
    if isinstance(chosen, Mapping) and variant is not None:
        for field, message in _decision_problems(variant, chosen, spec):
            found.setdefault(field, message)
    elif "decision" not in found:
        found["decision"] = _no_decision(chosen, spec)
    if not found:
        try:
            model.model_validate(given)
        except ValidationError as exc:
            for err in exc.errors():
                field = str(err["loc"][-1]) if err["loc"] else "answer"
                found.setdefault(field, f"{field}: {err['msg']}")
    out = [message for _, message in sorted(found.items(), key=lambda kv: _rank(kv[0]))]
    until = _date(flat.get("valid_until"))
    if flat.get("decision") == APPROVE and until is not None and until < today:
        out.append(f"the reference expired on {until.isoformat()}")
    return out


def _top_problems(
    model: type[ApprovalAnswer], given: Mapping[str, Any], binding: Binding | None
) -> dict[str, str]:
    """Problems with the answer's own fields (approver, constants, fields the form lacks)."""
    schema = model.model_json_schema()
    schema["properties"]["decision"] = {}  # checked per variant, with its own words
    found: dict[str, str] = {}
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    for error in validator.iter_errors(given):
        for field in _fields_of(error, given):
            found.setdefault(field, _top_message(field, error, given, binding))
    return found


def _variant_of(spec: RouteSpec, chosen: Mapping[str, Any]) -> type[Decision] | None:
    """The variant a decision names (a rejection, or an approval on one of the route's bases)."""
    verdict, basis = decision_named(chosen)
    if verdict == REJECT:
        return rejection_variant()
    if verdict == APPROVE and basis in spec.bases:
        return approval_variant(str(basis), spec.bases[str(basis)])
    return None


def _no_decision(chosen: object, spec: RouteSpec) -> str:
    verdict, basis = decision_named(chosen) if isinstance(chosen, Mapping) else (None, None)
    if verdict is None:
        return "decision must be `approve` on one basis or `reject`"
    return f"basis {str(basis)[:40]!r} is not one of the route's: {sorted(spec.bases)}"


def _decision_problems(
    variant: type[Decision], chosen: Mapping[str, Any], spec: RouteSpec
) -> list[tuple[str, str]]:
    """Problems with the chosen decision's fields, in words an approver acts on."""
    given = {k: v for k, v in chosen.items() if v not in (None, "")}
    validator = Draft202012Validator(variant.model_json_schema(), format_checker=FormatChecker())
    verdict, named = decision_named(given)
    basis = spec.bases.get(str(named)) if verdict == APPROVE else None
    out: list[tuple[str, str]] = []
    for error in validator.iter_errors(given):
        for field in _fields_of(error, given):
            out.append((field, _field_message(field, error, given, basis)))
    return out


_EMPTY_APPROVER = "the approver's name is empty"


def _rank(field: str) -> tuple[int, str]:
    return (_ORDER.index(field) if field in _ORDER else len(_ORDER), field)


def _fields_of(error: SchemaError, given: Mapping[str, Any]) -> list[str]:
    """The answer's fields a schema error is about."""
    if error.path:
        return [str(error.path[0])]
    if error.validator == "required":
        return [f for f in cast(list[str], error.validator_value) if f not in given]
    if error.validator == "additionalProperties":
        return sorted(set(given) - set(cast(dict[str, Any], error.schema["properties"])))
    return ["answer"]


def _top_message(
    field: str, error: SchemaError, given: Mapping[str, Any], binding: Binding | None
) -> str:
    """One problem with the answer's own fields (never the value of a free-text field)."""
    if field == "approver":
        return "; ".join(name_problems(given.get(field), "approver")) or _EMPTY_APPROVER
    if field == "decision":
        return "decision must be `approve` or `reject`"
    if binding is not None and field in BOUND:
        return _bound_message(field, given.get(field), binding)
    if error.validator == "additionalProperties":
        return f"the answer has a field the form does not: {field[:40]}"
    return f"{field}: {error.message}"[:200]


def _bound_message(field: str, value: Any, binding: Binding) -> str:
    wanted = getattr(binding, field)
    if value is None:
        return f"the answer does not carry the form's {field} ({wanted[:16]})"
    if field == "nonce":
        return "the answer carries another form's nonce: it was not given on this form"
    return f"the answer was given for {field} {str(value)[:16]}, this form asks about {wanted[:16]}"


def _field_message(
    field: str, error: SchemaError, given: Mapping[str, Any], basis: RouteBasis | None
) -> str:
    """One problem with the chosen decision's fields (never a free-text value)."""
    value = given.get(field)
    if error.validator == "additionalProperties":
        return f"the decision has a field the form does not: {field[:40]}"
    if field == "valid_until" and value not in (None, ""):
        return f"valid_until {str(value)[:20]!r} is not a real date (YYYY-MM-DD)"
    if field == "reason":
        return "rejecting needs a reason"
    if basis is None or field not in ("reference", "valid_until", "evidence_url"):
        return f"{field}: {error.validator} not met"
    return {
        "reference": f"approving on '{basis.label}' needs a reference: {basis.reference}",
        "valid_until": f"approving on '{basis.label}' needs the reference's expiry (valid_until)",
        "evidence_url": (
            f"approving on '{basis.label}' needs a link to the evidence (evidence_url)"
        ),
    }[field]


def _date(value: Any) -> dt.date | None:
    if value is None or value == "" or isinstance(value, dt.date):
        return value or None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None
