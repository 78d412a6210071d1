"""Usage terms as a machine-readable W3C ODRL 2.2 policy, stored with every version.

An `Offer` of the exchange (its `assigner`): permitted purposes become a `use` permission
constrained by `purpose` and `spatial` (the markets the version is offered in, one `@list` each)
and, when the terms expire, `dateTime`. Re-identification and onward transfer are prohibitions
with actions of our profile (`PROFILE`): `odrl:transfer` means a transfer of ownership, not giving
a copy to someone else. `distribute` is prohibited too, and the conflict strategy is `prohibit`,
so a prohibited action stays prohibited although `use` includes it (ODRL's default, `invalid`,
would void the whole policy). The JSON-LD context is inline, and each profile action used carries
its declaration, so the policy parses with no network. Vocabulary: https://www.w3.org/TR/odrl-vocab/.
"""

from __future__ import annotations

from typing import Any

from databourse.config import UsageTerms

ODRL = "http://www.w3.org/ns/odrl/2/"
PROFILE = "https://databourse.org/ns/terms"  # our ODRL profile: the actions below
DATABOURSE_VOCAB = f"{PROFILE}#"
EXCHANGE = "urn:databourse:exchange"  # the party that offers every version: the catalog publisher
# The terms a policy uses, mapped to the ODRL 2.2 vocabulary's IRIs: inline, so that no reader
# fetches https://www.w3.org/ns/odrl.jsonld. The operands of `and` are one rdf:List (ODRL 2.2
# §2.5.2), and an `isAnyOf` right operand is given as one "@list" where it is built.
CONTEXT: dict[str, Any] = {
    "odrl": ODRL,
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "uid": "@id",
    "Offer": "odrl:Offer",
    "Party": "odrl:Party",
    "Asset": "odrl:Asset",
    "Action": "odrl:Action",
    "profile": {"@id": "odrl:profile", "@type": "@id"},
    "conflict": {"@id": "odrl:conflict", "@type": "@vocab"},
    "assigner": {"@id": "odrl:assigner", "@type": "@id"},
    "target": {"@id": "odrl:target", "@type": "@id"},
    "permission": {"@id": "odrl:permission", "@type": "@id"},
    "prohibition": {"@id": "odrl:prohibition", "@type": "@id"},
    "action": {"@id": "odrl:action", "@type": "@vocab"},
    "includedIn": {"@id": "odrl:includedIn", "@type": "@vocab"},
    "constraint": {"@id": "odrl:constraint", "@type": "@id"},
    "and": {"@id": "odrl:and", "@type": "@id", "@container": "@list"},
    "leftOperand": {"@id": "odrl:leftOperand", "@type": "@vocab"},
    "operator": {"@id": "odrl:operator", "@type": "@vocab"},
    "rightOperand": "odrl:rightOperand",
    "use": "odrl:use",
    "distribute": "odrl:distribute",
    "purpose": "odrl:purpose",
    "spatial": "odrl:spatial",
    "dateTime": "odrl:dateTime",
    "isAnyOf": "odrl:isAnyOf",
    "lteq": "odrl:lteq",
    "prohibit": "odrl:prohibit",
}
# The actions of our profile (ODRL 2.2 §2.7): each is a kind of `use`, with its definition.
PROFILE_ACTIONS: dict[str, str] = {
    "reidentify": "To single out, or link to an identified or identifiable natural person, any "
    "record of the asset or of anything derived from it.",
    "onwardTransfer": "To give any party other than the assignee access to the asset, a copy "
    "or part of it, or anything derived from it that is not aggregated beyond recognition, "
    "in any jurisdiction.",
}
EU_COUNTRY = "http://publications.europa.eu/resource/authority/country/"
# The EU Publications Office's country codes (ISO 3166-1 alpha-3) of the markets of this region;
# a market not listed is named by its ISO 3166 URN, still a dct:Location.
EU_COUNTRY_CODES = {
    "AU": "AUS", "BN": "BRN", "CN": "CHN", "GB": "GBR", "HK": "HKG", "ID": "IDN", "IN": "IND",
    "JP": "JPN", "KH": "KHM", "KR": "KOR", "LA": "LAO", "MM": "MMR", "MO": "MAC", "MY": "MYS",
    "NZ": "NZL", "PH": "PHL", "SG": "SGP", "TH": "THA", "TW": "TWN", "US": "USA", "VN": "VNM",
}  # fmt: skip


def place_iri(market: str) -> str:
    """The IRI of a market's country: the EU country authority's, else the ISO 3166 URN."""
    code = EU_COUNTRY_CODES.get(market)
    return f"{EU_COUNTRY}{code}" if code else f"urn:iso:std:iso:3166:-1:{market}"


def usage_policy(
    product: str,
    version: str,
    content_hash: str,
    terms: UsageTerms,
    markets: list[str],
) -> dict[str, Any]:
    """An ODRL `Offer` for one version: what a buyer may and may not do with it."""
    target = {"@id": f"urn:databourse:{product}:{version}:sha256:{content_hash}", "@type": "Asset"}
    assigner = {"@id": EXCHANGE, "@type": "Party"}
    constraints: list[dict[str, Any]] = [
        {
            "leftOperand": "purpose",
            "operator": "isAnyOf",
            "rightOperand": {"@list": terms.purposes},
        },
        {
            "leftOperand": "spatial",
            "operator": "isAnyOf",
            "rightOperand": {"@list": [{"@id": place_iri(m)} for m in markets]},
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
    prohibited: list[Any] = []
    if terms.reidentification_prohibited:
        prohibited.append(_profile_action("reidentify"))
    if not terms.onward_transfer_allowed:
        prohibited += ["distribute", _profile_action("onwardTransfer")]
    return {
        "@context": CONTEXT,
        "@type": "Offer",
        "uid": f"{target['@id']}:policy",
        "profile": PROFILE,
        "conflict": "prohibit",
        "assigner": assigner,
        "permission": [
            {
                "target": target,
                "assigner": assigner,
                "action": "use",
                "constraint": [{"and": constraints}],
            }
        ],
        "prohibition": [
            {"target": target, "assigner": assigner, "action": action} for action in prohibited
        ],
    }


def _profile_action(name: str) -> dict[str, Any]:
    """A profile action with its declaration (ODRL 2.2 §2.7.1: a sub-action of `use`)."""
    return {
        "@id": f"{DATABOURSE_VOCAB}{name}",
        "@type": "Action",
        "rdfs:isDefinedBy": {"@id": PROFILE},
        "skos:definition": {"@value": PROFILE_ACTIONS[name], "@language": "en"},
        "includedIn": "use",
    }
