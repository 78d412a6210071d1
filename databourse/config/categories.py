"""The categories of personal data a column may be declared to hold, and which of them identify
a person on their own or are sensitive."""

from __future__ import annotations

from typing import Literal

Category = Literal[
    "CN_RESIDENT_ID",
    "CN_USCC",
    "MY_NRIC",
    "SG_NRIC_FIN",
    "HK_ID",
    "PASSPORT",
    "PHONE_NUMBER",
    "EMAIL_ADDRESS",
    "CREDIT_CARD",
    "IBAN",
    "BANK_ACCOUNT",
    "IP_ADDRESS",
    "PERSON_NAME",
    "ADDRESS",
    "DATE_OF_BIRTH",
    "GEO_COORDINATES",
    "LICENSE_PLATE",
    "ID_NIK",
    "TH_ID",
    "VN_CCCD",
    "PH_ID",
    "TW_ID",
    "KR_RRN",
    "JP_MY_NUMBER",
    "IN_AADHAAR",
    "IN_PAN",
    "US_SSN",
    "UK_NINO",
    "MAC_ADDRESS",
    "IMEI",
    "PERSONAL_URL",
]
# National ids of the exchange's next markets (databourse.pii.identifiers_intl).
NATIONAL_IDS_INTL: frozenset[str] = frozenset(
    {"ID_NIK", "TH_ID", "VN_CCCD", "PH_ID", "TW_ID", "KR_RRN", "JP_MY_NUMBER", "IN_AADHAAR"}
    | {"IN_PAN", "US_SSN", "UK_NINO"}
)
# Identify a person on their own: never allowed in a product unless pseudonymized.
DIRECT_IDENTIFIERS: frozenset[str] = frozenset(
    {
        "CN_RESIDENT_ID",
        "MY_NRIC",
        "SG_NRIC_FIN",
        "HK_ID",
        "PASSPORT",
        "PHONE_NUMBER",
        "EMAIL_ADDRESS",
        "CREDIT_CARD",
        "IBAN",
        "BANK_ACCOUNT",
        "IP_ADDRESS",
        "PERSON_NAME",
        "LICENSE_PLATE",
        "MAC_ADDRESS",  # one device, as an IP address
        "IMEI",
        "PERSONAL_URL",
    }
    | NATIONAL_IDS_INTL
)
# Sensitive personal information (PIPL art. 28): identity, financial accounts, location.
SENSITIVE_CATEGORIES: frozenset[str] = frozenset(
    {
        "CN_RESIDENT_ID",
        "MY_NRIC",
        "SG_NRIC_FIN",
        "HK_ID",
        "PASSPORT",
        "CREDIT_CARD",
        "IBAN",
        "BANK_ACCOUNT",
        "GEO_COORDINATES",
    }
    | NATIONAL_IDS_INTL
)
