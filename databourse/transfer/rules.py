"""What an approver's answer must say, written once: it makes the form's schema and the check.

`answer_model(route, spec, binding)` is the pydantic model of one suspension's answer: the
approver, a `decision` that is one of the route's approvals (one per basis, each requiring the
fields its basis needs) or a rejection (requiring a reason), and (with a `Binding`) the
product, version, content hash, market and nonce of the suspension as constants. The route
itself is fixed by the policy and is not an input. The Prefect form subclasses the model, so
the server validates a resume against exactly this schema, and the UI draws the decision as a
choice between those variants, each showing its own required fields; `answer_problems`
checks a stored answer against the same schema (`databourse.transfer.answers`). `flat_answer`
gives the recorded fields of an answer, `form_value` the form's value for a flat answer
(`bourse approve`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal, Union, cast

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from databourse.config import RouteBasis, RouteSpec
from databourse.names import NAME_MAX_LENGTH, NAME_PATTERN

# A reference that names something: has a letter or digit, and is not a placeholder.
MEANINGFUL = (
    r"^(?!\s*(?:[Nn][Oo][Nn][Ee]|[Nn]/?[Aa]|-+|[Tt][Bb][Dd]|[Tt][Oo][Dd][Oo]"
    r"|[Uu][Nn][Kk][Nn][Oo][Ww][Nn])\s*$).*[A-Za-z0-9]"
)
SAYS_SOMETHING = r"\S"
BOUND = ("product", "version", "content_hash", "market", "nonce")
APPROVE, REJECT = "approve", "reject"
# A decision names itself by a key of its own, `approve_<basis>` or `reject` (set to true): the
# Prefect UI tells a choice's value from the others' by its keys alone, never by their values.
APPROVE_ON = "approve_"


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


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")  # MEANINGFUL looks ahead


def _no_default(schema: dict[str, Any]) -> None:
    """An optional field the form leaves empty: no `null` default for the UI to send."""
    schema.pop("default", None)


# An optional date: absent or a date, drawn as a date (never as a choice of `null`).
_OPTIONAL_DATE = Annotated[dt.date | None, WithJsonSchema({"type": "string", "format": "date"})]


def _fixed(value: str | bool, description: str, title: str | None = None) -> Any:
    """A constant the form shows and sends back unchanged (required, shown filled in)."""
    return (
        cast(Any, Literal)[(value,)],
        Field(title=title, description=description, json_schema_extra={"default": value}),
    )


def approval_variant(name: str, basis: RouteBasis) -> type[Decision]:
    """The decision `approve` on one basis: the fields that basis requires are required."""
    needs = set(basis.requires)
    fields: dict[str, Any] = {
        f"{APPROVE_ON}{name}": _fixed(
            True, f"The basis this approval relies on ({basis.citation})", basis.label
        ),
        "reference": (
            str,
            Field(pattern=MEANINGFUL, title="Reference", description=basis.reference)
            if "reference" in needs
            else Field("", title="Reference", description=basis.reference),
        ),
        "valid_until": (
            (dt.date, Field(title="Valid until", description="Expiry of the filing or certificate"))
            if "valid_until" in needs
            else (
                _OPTIONAL_DATE,
                Field(
                    None,
                    title="Valid until",
                    description="Expiry of the filing or certificate, if it has one",
                    json_schema_extra=_no_default,
                ),
            )
        ),
        "evidence_url": (
            str,
            Field(pattern=SAYS_SOMETHING, title="Evidence", description=_EVIDENCE)
            if "evidence_url" in needs
            else Field("", title="Evidence", description=_EVIDENCE),
        ),
        "conditions": (str, Field("", description="Conditions attached to the approval")),
        "carry_over": (bool, Field(False, title="Covers later versions", description=_CARRY_OVER)),
    }
    return _variant(f"Approve: {name.replace('_', ' ')}", name, fields)


_EVIDENCE = "Where the contract, filing or assessment is kept"
_CARRY_OVER = (
    "This reference also covers later versions of the product with the same schema and "
    "personal-data categories, under the same rule, until it expires"
)


def rejection_variant() -> type[Decision]:
    """The decision `reject`: a reason is required."""
    fields: dict[str, Any] = {
        REJECT: _fixed(True, "Refuse the transfer", "Reject"),
        "reason": (
            str,
            Field(
                pattern=SAYS_SOMETHING, title="Reason", description="Why the transfer is refused"
            ),
        ),
        "reference": (str, Field("", description="A reference, if any")),
    }
    return _variant("Reject", "reject", fields)


def _variant(title: str, name: str, fields: dict[str, Any]) -> type[Decision]:
    namespace = {
        "__module__": __name__,
        "__annotations__": {f: kind for f, (kind, _) in fields.items()},
        **{f: field for f, (_, field) in fields.items()},
        "model_config": {**Decision.model_config, "title": title},
    }
    return cast(type[Decision], type(f"Decision_{name}", (Decision,), namespace))


def decision_variants(spec: RouteSpec) -> list[type[Decision]]:
    """The choices the form offers: an approval on each basis of the route, then a rejection."""
    return [approval_variant(n, b) for n, b in spec.bases.items()] + [rejection_variant()]


def answer_model(
    route: str,
    spec: RouteSpec,
    binding: Binding | None = None,
    base: type[ApprovalAnswer] = ApprovalAnswer,
) -> type[ApprovalAnswer]:
    """The answer's model for one route (and one suspension, with a binding)."""
    variants = decision_variants(spec)
    # Inlined, each with its title: the UI draws one button per variant and its own fields.
    shown = {"anyOf": [v.model_json_schema() for v in variants], "title": "Decision"}
    kind: Any = Annotated[cast(Any, Union)[tuple(variants)], WithJsonSchema(shown)]
    fields: dict[str, Any] = {
        "decision": (
            kind,
            Field(description=f"Approve on one of the bases of the route {spec.title}, or reject"),
        )
    }
    for name, value in (binding.to_json() if binding else {}).items():
        # Required, yet shown filled in and fixed: the form carries it back unchanged.
        fields[name] = _fixed(value, _BOUND_HELP[name])
    namespace = {
        "__module__": base.__module__,
        "__annotations__": {name: kind for name, (kind, _) in fields.items()},
        **{name: field for name, (_, field) in fields.items()},
        "model_config": {**base.model_config, "title": f"Transfer approval ({route})"},
    }
    return cast(type[ApprovalAnswer], type(base.__name__, (base,), namespace))


_BOUND_HELP = {
    "product": "The product this form asks about",
    "version": "The version this form asks about",
    "content_hash": "The content hash of that version (what is approved)",
    "market": "The destination market",
    "nonce": "This form's one-time number: an answer counts only for this form",
}


def flat_answer(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The recorded fields of a form's answer: `decision` is `approve` or `reject`, a
    rejection's reason is its `conditions`."""
    decision = answer.get("decision")
    if not isinstance(decision, Mapping):
        return dict(answer)  # given on the earlier flat form (decision a word), or malformed
    chosen = dict(decision)
    verdict, basis = decision_named(chosen)
    flat = {k: v for k, v in answer.items() if k != "decision"}
    flat["decision"] = verdict
    if verdict == REJECT:
        chosen.pop(REJECT)
        flat["conditions"] = chosen.pop("reason", "")
    elif verdict == APPROVE:
        chosen.pop(f"{APPROVE_ON}{basis}")
        flat["basis"] = basis
    return {**flat, **chosen}


def decision_named(chosen: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The verdict (`approve`, `reject` or None) a decision names, and an approval's basis."""
    if REJECT in chosen:
        return REJECT, None
    named = [k.removeprefix(APPROVE_ON) for k in chosen if k.startswith(APPROVE_ON)]
    return (APPROVE, named[0]) if len(named) == 1 else (None, None)


def form_value(answer: Mapping[str, Any], spec: RouteSpec | None) -> dict[str, Any]:
    """The form's value for a flat answer (`decision` `approve` or `reject`, the approval's
    fields beside it): what `bourse approve` and `bourse approve reject` send."""
    top = {k: answer[k] for k in ("approver", *BOUND) if k in answer}
    chosen: dict[str, Any]
    if answer.get("decision") == REJECT:
        chosen = {REJECT: True, "reason": answer.get("conditions") or ""}
        fields: tuple[str, ...] = ("reference",)
    elif answer.get("decision") == APPROVE:
        basis = answer.get("basis") or (next(iter(spec.bases)) if spec else "")
        chosen = {f"{APPROVE_ON}{basis}": True}
        fields = ("reference", "valid_until", "evidence_url", "conditions", "carry_over")
    else:
        return {**top, "decision": answer.get("decision")}
    chosen |= {name: answer[name] for name in fields if answer.get(name) not in (None, "")}
    return {**top, "decision": chosen}
