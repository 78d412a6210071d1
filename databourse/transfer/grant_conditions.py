"""Conditions an approver attached to a transfer: a grant resting on them must accept them.

An approver may approve a transfer under conditions (free text on the form, e.g. "aggregates
only", "no onward transfer"). A grant resting on such an approval is recorded only when whoever
grants accepted exactly that text: `bourse grant` shows it and asks for `--accept-conditions`, the
catalog compares the sha256 of the text accepted with the approval's, and the grant's audit event
records that sha256 and the acceptance. The approval's own audit event records the sha256 too, so
conditions rewritten or emptied in the catalog contradict the trail (`trail_state`). Messages and
audit details carry the hash and the approval's id, never the text.
"""

from __future__ import annotations

import hashlib

__all__ = ["acceptance_problem", "conditions_sha256"]


def conditions_sha256(text: str | None) -> str | None:
    """The sha256 of an approval's conditions; None when it has none (absent or blank)."""
    if text is None or not text.strip():
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def acceptance_problem(conditions: str | None, accepted: str | None) -> str | None:
    """Why a grant has not accepted these conditions (None: it has, or there are none).

    `accepted` is the sha256 of the conditions the person granting was shown and accepted.
    """
    required = conditions_sha256(conditions)
    if required is None or accepted == required:
        return None
    if accepted is None:
        return "its conditions were not accepted: read them and grant with --accept-conditions"
    return "its conditions changed since they were shown and accepted: read them again"
