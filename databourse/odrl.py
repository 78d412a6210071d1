"""Usage terms as a machine-readable W3C ODRL 2.2 policy, stored with every version.

Permitted purposes become `use` permissions constrained by `purpose` and `spatial` (the markets the
version is offered in) and, when the terms expire, `dateTime`; re-identification and onward
transfer are prohibitions. Vocabulary: https://www.w3.org/TR/odrl-vocab/.
"""

from __future__ import annotations

from typing import Any

from databourse.config import UsageTerms

ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
DATABOURSE_VOCAB = "https://databourse.org/ns/terms#"  # our own action for re-identification


def usage_policy(
    product: str, version: str, content_hash: str, terms: UsageTerms, markets: list[str]
) -> dict[str, Any]:
    """An ODRL `Offer` for one version: what a buyer may and may not do with it."""
    target = f"urn:databourse:{product}:{version}:sha256:{content_hash}"
    constraints: list[dict[str, Any]] = [
        {"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": list(terms.purposes)},
        {
            "leftOperand": "spatial",
            "operator": "isAnyOf",
            "rightOperand": [{"@id": f"urn:iso:std:iso:3166:-1:{m}"} for m in markets],
        },
    ]
    if terms.expires is not None:
        constraints.append(
            {
                "leftOperand": "dateTime",
                "operator": "lteq",
                "rightOperand": {"@value": terms.expires.isoformat(), "@type": "xsd:date"},
            }
        )
    prohibitions = []
    if terms.reidentification_prohibited:
        prohibitions.append({"target": target, "action": {"@id": f"{DATABOURSE_VOCAB}reidentify"}})
    if not terms.onward_transfer_allowed:
        prohibitions.append({"target": target, "action": "distribute"})
        prohibitions.append({"target": target, "action": "transfer"})
    return {
        "@context": [ODRL_CONTEXT, {"xsd": "http://www.w3.org/2001/XMLSchema#"}],
        "@type": "Offer",
        "uid": f"{target}:policy",
        "profile": DATABOURSE_VOCAB.rstrip("#"),
        "permission": [
            {
                "target": target,
                "action": "use",
                "constraint": [{"and": constraints}] if len(constraints) > 1 else constraints,
            }
        ],
        "prohibition": prohibitions,
    }
