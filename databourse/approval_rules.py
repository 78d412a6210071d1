"""What an approver's answer must say, written once: it makes the form's schema and the check.

`answer_model(route, spec, binding)` is the pydantic model of one suspension's answer: the
fields a person fills, the route's `basis` choices, the JSON-schema clauses that say which
fields each basis requires, and (with a `Binding`) the product, version, content hash, market
and nonce of the suspension as single-value constants. The Prefect form subclasses it, so the
server validates a resume against exactly this schema; `answer_problems` validates an answer in
Python against the same schema (formats included) and the same model, so an answer written
around the form (stored straight into the Prefect API) meets the very same rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError as SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from databourse.config import RouteBasis, RouteSpec
from databourse.names import NAME_MAX_LENGTH, NAME_PATTERN, name_problems

# A reference that names something: has a letter or digit, and is not a placeholder.
MEANINGFUL = (
    r"^(?!\s*(?:[Nn][Oo][Nn][Ee]|[Nn]/?[Aa]|-+|[Tt][Bb][Dd]|[Tt][Oo][Dd][Oo]"
    r"|[Uu][Nn][Kk][Nn][Oo][Ww][Nn])\s*$).*[A-Za-z0-9]"
)
FIELD_RULES: dict[str, dict[str, Any]] = {
    "reference": {"type": "string", "pattern": MEANINGFUL},
    "valid_until": {"type": "string", "format": "date"},
    "evidence_url": {"type": "string", "pattern": r"\S"},
}
BOUND = ("product", "version", "content_hash", "market", "nonce")
# Problems are reported in the order a person reads the form.
_ORDER = ("approver", "decision", "route", "basis", "reference", "valid_until", "evidence_url")


@dataclass(frozen=True)
class Binding:
    """The suspension an answer is for: it comes back with the answer, constant by constant."""

    product: str
    version: str
    content_hash: str
    market: str
    nonce: str

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Binding:
        """The binding named in a mapping (a pending approval's record)."""
        return cls(**{name: str(data[name]) for name in BOUND})

    def to_json(self) -> dict[str, str]:
        return asdict(self)


class ApprovalAnswer(BaseModel):
    """Approve or reject one product version's transfer to one market."""

    model_config = ConfigDict(extra="forbid")

    approver: str = Field(
        min_length=1,
        max_length=NAME_MAX_LENGTH,
        pattern=NAME_PATTERN,
        description="Who decides (name or staff id)",
    )
    decision: Literal["approve", "reject"]  # no default: the form must not pre-select an answer
    route: str = Field(description="The legal route the rule requires (set by the policy)")
    basis: str = Field("", description="The basis within the route the approval relies on")
    reference: str = Field("", description="Filing, certificate or assessment number")
    valid_until: dt.date | None = Field(None, description="Expiry of the filing or certificate")
    conditions: str = Field("", description="Conditions attached, or the reason for a rejection")
    evidence_url: str = Field("", description="Where the contract, filing or assessment is kept")
    carry_over: bool = Field(
        False,
        description=(
            "This reference also covers later versions of the product with the same schema and "
            "personal-data categories, under the same rule, until it expires"
        ),
    )


def answer_model(
    route: str,
    spec: RouteSpec,
    binding: Binding | None = None,
    base: type[ApprovalAnswer] = ApprovalAnswer,
) -> type[ApprovalAnswer]:
    """The answer's model for one route (and one suspension, with a binding)."""
    bases = tuple(spec.bases)
    choices = "; ".join(f"`{name}`: {b.label}" for name, b in spec.bases.items())
    fields: dict[str, Any] = {
        "route": (str, Field(route, description=f"{spec.title} (an approval keeps this route)")),
        "basis": (_one_of(bases), Field(bases[0], description=f"The basis relied on: {choices}")),
    }
    for name, value in (binding.to_json() if binding else {}).items():
        # Required, yet shown filled in: the form carries it back unchanged.
        shown: dict[str, Any] = {"default": value, "readOnly": True}
        fields[name] = (
            _one_of((value,)),
            Field(description=_BOUND_HELP[name], json_schema_extra=shown),
        )
    namespace = {
        "__module__": base.__module__,
        "__annotations__": {name: kind for name, (kind, _) in fields.items()},
        **{name: field for name, (_, field) in fields.items()},
        "model_config": {
            **base.model_config,
            "json_schema_extra": {"allOf": requirements(route, spec)},
        },
    }
    return cast(type[ApprovalAnswer], type(base.__name__, (base,), namespace))


_BOUND_HELP = {
    "product": "The product this form asks about",
    "version": "The version this form asks about",
    "content_hash": "The content hash of that version (what is approved)",
    "market": "The destination market",
    "nonce": "This form's one-time number: an answer counts only for this form",
}


def _one_of(values: tuple[str, ...]) -> Any:
    return cast(Any, Literal)[values]


def requirements(route: str, spec: RouteSpec) -> list[dict[str, Any]]:
    """JSON-schema clauses: an approval keeps the rule's route and fills what its basis needs."""
    approving = {"properties": {"decision": {"const": "approve"}}, "required": ["decision"]}
    clauses: list[dict[str, Any]] = [
        {"if": approving, "then": {"properties": {"route": {"const": route}}}}
    ]
    for position, (name, basis) in enumerate(spec.bases.items()):
        if not basis.requires:
            continue
        # The first basis is the default: it applies when the answer leaves `basis` out.
        required = ["decision"] if position == 0 else ["decision", "basis"]
        when = {
            "properties": {"decision": {"const": "approve"}, "basis": {"const": name}},
            "required": required,
        }
        then = {
            "required": list(basis.requires),
            "properties": {f: FIELD_RULES[f] for f in basis.requires},
        }
        clauses.append({"if": when, "then": then})
    return clauses


def answer_problems(
    route: str,
    spec: RouteSpec | None,
    answer: Mapping[str, Any],
    today: dt.date,
    binding: Binding | None = None,
) -> list[str]:
    """Why an answer cannot be recorded on this route and suspension (empty when it can).

    Without a binding the suspension's constants are not checked (an answer being prepared).
    """
    if spec is None:
        if answer.get("decision") != "approve":
            return name_problems(answer.get("approver"), "approver")
        return [f"route {route!r} is not defined in the cross-border policy"]
    given = dict(answer) if binding else {k: v for k, v in answer.items() if k not in BOUND}
    given = {k: v for k, v in given.items() if v not in (None, "")}  # blank is missing
    model = answer_model(route, spec, binding)
    validator = Draft202012Validator(model.model_json_schema(), format_checker=FormatChecker())
    found: dict[str, str] = {}
    for error in validator.iter_errors(given):
        for field in _fields_of(error, given):
            found.setdefault(field, _message(field, error, given, route, spec, binding))
    if not found:
        try:
            model.model_validate(given)
        except ValidationError as exc:
            for err in exc.errors():
                field = str(err["loc"][0]) if err["loc"] else "answer"
                found.setdefault(field, f"{field}: {err['msg']}")
    problems = sorted(found.items(), key=lambda kv: _rank(kv[0]))
    out = [message for _, message in problems]
    until = _date(given.get("valid_until"))
    if given.get("decision") == "approve" and until is not None and until < today:
        out.append(f"the reference expired on {until.isoformat()}")
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


def _message(
    field: str,
    error: SchemaError,
    given: Mapping[str, Any],
    route: str,
    spec: RouteSpec,
    binding: Binding | None,
) -> str:
    """One problem, in words an approver acts on (never the value of a free-text field)."""
    value = given.get(field)
    basis = _basis(route, spec, given)
    if field == "approver":
        return "; ".join(name_problems(value, "approver")) or _EMPTY_APPROVER
    if field == "decision":
        return "decision must be `approve` or `reject`"
    if field == "route":
        return f"the approval names route {value!r}; the rule requires {route!r}"
    if field == "basis":
        return f"basis {value!r} is not one of route {route}'s: {sorted(spec.bases)}"
    if binding is not None and field in BOUND:
        return _bound_message(field, value, binding)
    if field in FIELD_RULES and basis is not None:
        return _field_message(field, value, basis)
    if error.validator == "additionalProperties":
        return f"the answer has a field the form does not: {field}"
    return f"{field}: {error.message}"


def _bound_message(field: str, value: Any, binding: Binding) -> str:
    wanted = getattr(binding, field)
    if value is None:
        return f"the answer does not carry the form's {field} ({wanted[:16]})"
    if field == "nonce":
        return "the answer carries another form's nonce: it was not given on this form"
    return f"the answer was given for {field} {str(value)[:16]}, this form asks about {wanted[:16]}"


def _field_message(field: str, value: Any, basis: RouteBasis) -> str:
    if field == "valid_until" and value not in (None, ""):
        return f"valid_until {str(value)[:20]!r} is not a real date (YYYY-MM-DD)"
    return {
        "reference": f"approving on '{basis.label}' needs a reference: {basis.reference}",
        "valid_until": f"approving on '{basis.label}' needs the reference's expiry (valid_until)",
        "evidence_url": (
            f"approving on '{basis.label}' needs a link to the evidence (evidence_url)"
        ),
    }[field]


def _basis(route: str, spec: RouteSpec, answer: Mapping[str, Any]) -> RouteBasis | None:
    return spec.bases.get(str(answer.get("basis") or next(iter(spec.bases))))


def _date(value: Any) -> dt.date | None:
    if value is None or value == "" or isinstance(value, dt.date):
        return value or None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None
