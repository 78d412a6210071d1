"""The strict base of every config model (unknown keys refused, frozen) and the field types
they share."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Jurisdiction = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
IDENTIFIER = r"^[a-z][a-z0-9_-]{0,62}$"  # a provider's, dataset's or product's id
Identifier = Annotated[str, Field(pattern=IDENTIFIER)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
