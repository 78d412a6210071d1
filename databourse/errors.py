"""The one exception hierarchy of databourse.

    DataBourseError
    ├── ConfigError              a config file or key is invalid (lists every problem)
    ├── SecretMissing            a named secret is not set anywhere
    ├── KeyRefused               a key was found but may not be used (weak, exposed, not the
    │                            key recorded for its version)
    ├── StorageError             the object store failed
    │   ├── ObjectNotFound
    │   ├── ObjectExists         a conditional (if-absent) write found the key taken
    │   └── ObjectChanged        an ingested object or its record is not what ingest recorded,
    │                            or a listing object is not what its seal vouches for
    ├── GateFailed               a dataset or product failed a gate; the input is quarantined
    │   ├── IngestRejected       the file could not be parsed or broke its contract
    │   ├── QualityFailed        error-severity expectations failed
    │   ├── PersonalDataFound    undeclared personal data, or a direct identifier in a product
    │   └── PrivacyModelFailed   the privacy model (k, l, t) cannot be met
    ├── CatalogError             the catalog refused an operation
    │   ├── VersionNotFound
    │   ├── InvalidName          a buyer or approver name is empty, too long or has controls
    │   ├── AccessRefused        a buyer's request is refused (401/403), naming their grant only
    │   └── ManifestMismatch     a version's manifest or files differ from its content hash
    │       └── FactsMismatch    its manifest disagrees with its product's config or files
    ├── TransferNotApproved      a market was asked for without a recorded approval
    └── SlotWaitTimeout          a run waited its bound for a concurrency slot (names holders)

Messages never carry cell values: only names, keys, counts and hashes. Every exception keeps its
inputs as attributes and pickles across processes (Dask workers, Prefect result storage).
"""

from __future__ import annotations

from typing import Any


class DataBourseError(Exception):
    """Base of every error raised by databourse."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context
        for name, value in context.items():
            setattr(self, name, value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.context))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[DataBourseError], message: str, context: dict[str, Any]) -> DataBourseError:
    err = cls.__new__(cls)
    DataBourseError.__init__(err, message, **context)
    return err


class ConfigError(DataBourseError):
    """One or more config files are invalid; `problems` lists 'file: key.path: message'."""

    problems: list[str]

    def __init__(self, problems: list[str]) -> None:
        lines = "\n  ".join(problems)
        super().__init__(f"{len(problems)} config problem(s):\n  {lines}", problems=problems)


class SecretMissing(DataBourseError):
    """A secret named in settings is set neither in the environment nor in a Prefect block."""


class KeyRefused(DataBourseError):
    """A key was found but may not be used: weak, readable by others, or not its version's key."""


class StorageError(DataBourseError):
    """The object store failed."""


class ObjectNotFound(StorageError):
    """No object under that key."""


class ObjectExists(StorageError):
    """A conditional write found the key already taken."""


class ObjectChanged(StorageError):
    """A staged or raw object, or its record, differs from what ingest recorded, or a listing
    object from its seal (listing_seal); not retried."""


class GateFailed(DataBourseError):
    """A gate failed; `quarantine_uri` (when set) says where the input and its reason are kept."""


class IngestRejected(GateFailed):
    """The file could not be read or broke its schema contract."""


class QualityFailed(GateFailed):
    """Expectations of severity `error` failed."""


class PersonalDataFound(GateFailed):
    """Personal data where none may be: undeclared in a dataset, or an identifier in a product."""


class PrivacyModelFailed(GateFailed):
    """The product's privacy model (k, l, t) cannot be satisfied within its limits."""


class CatalogError(DataBourseError):
    """The catalog refused an operation."""


class VersionNotFound(CatalogError):
    """No such product version in the catalog."""


class AuditError(CatalogError):
    """The audit trail or its anchors refused an operation (a conflicting anchor, a lost key)."""


class InvalidName(CatalogError):
    """A name for the record (buyer, approver) is empty, overlong or holds control characters."""


class AccessRefused(CatalogError):
    """A buyer's request is refused: `status` (401 or 403) and a reason about their grant only."""

    status: int

    def __init__(self, status: int, reason: str, **context: Any) -> None:
        super().__init__(reason, status=status, **context)


class ManifestMismatch(CatalogError):
    """A version's manifest or files no longer match the content hash the catalog holds."""


class FactsMismatch(ManifestMismatch):
    """A version's manifest states facts (personal data, individuals, privacy model) that its
    product's config and its files contradict; `problems` lists each disagreement."""

    problems: list[str]


class TransferNotApproved(CatalogError):
    """A version was to be made available in a market without a recorded approval."""


class SlotWaitTimeout(DataBourseError):
    """A run waited its configured bound for a concurrency slot; `holders` says who held them."""
