"""`configs/settings.yaml`: where the state, store, catalog and keys are, the PII thresholds,
the approval and grant limits, a drop's caps and how much runs at once."""

# ruff: noqa: RUF012 (list and dict defaults are pydantic fields, copied per instance: ruff
# sees a model only when its BaseModel base is in the same file, and Strict is in strict.py)

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, model_validator

from databourse.config.strict import Jurisdiction, Strict


class SecretRef(Strict):
    """Where a secret lives: an environment variable first, then a Prefect Secret block."""

    env: str
    block: str | None = None


class IngestLimits(Strict):
    """Caps on one drop: size as dropped, size unpacked, and the compression ratio (zip bombs)."""

    max_file_bytes: int = Field(50 << 30, ge=1)
    max_uncompressed_bytes: int = Field(200 << 30, ge=1)
    max_compression_ratio: float = Field(200.0, gt=1)
    # The longest CSV row or JSON line; also Arrow's read block, so memory is about 100x this.
    max_row_bytes: int = Field(2 << 20, ge=1 << 16, le=256 << 20)
    # Entries of one zip (each is parsed and planned); xlsx packages count too.
    max_archive_members: int = Field(1000, ge=1, le=100_000)
    # The header line of a CSV, checked from the first MiB before anything parses it.
    max_header_bytes: int = Field(256 << 10, ge=1 << 10, le=1 << 20)


class StorageSettings(Strict):
    root: str = "state/store"  # a local folder (relative to the project) or s3://bucket/prefix
    endpoint_url: str | None = None  # any S3-compatible server
    region: str = "us-east-1"


class RunSettings(Strict):
    """How much runs at once, and on what."""

    provider_concurrency: int = Field(2, ge=1)  # drops of one provider processed at once
    # Drops a nightly run keeps started and not yet ended, on all workers together (the fleet's
    # size in drops); each provider's drops are also bounded by its limit.
    nightly_parallel: int = Field(4, ge=1)
    nightly_poll_seconds: float = Field(5, gt=0, le=300)  # how often it reads its drops' states
    nightly_wait_seconds: float = Field(20 * 3600, gt=0)  # a drop run not ended by then: given up
    drop_restarts: int = Field(2, ge=0, le=10)  # a crashed drop run (its process died) started anew
    # A drop run Pending or Running with no state change and no heartbeat for this long is taken
    # for dead and marked Crashed by the nightly (the zombie automation only sees runs that beat
    # once: a worker killed while submitting, or a run killed before its first beat, never do).
    drop_silence_seconds: float = Field(300, ge=60)
    # A provider slot's lease: a holder that dies frees its slot this long after its last renewal.
    slot_lease_seconds: int = Field(120, ge=60, le=86400)
    slot_notice_seconds: float = Field(60, gt=0)  # waiting longer for a slot logs who holds them
    slot_wait_seconds: float = Field(4 * 3600, gt=0)  # then the drop gives up with an error
    # Task runner for partitioned steps: "threads" (default) or "dask" (a local cluster, or the
    # scheduler at dask_address, e.g. tcp://10.0.0.5:8786).
    task_runner: Literal["threads", "dask"] = "threads"
    dask_address: str | None = None
    dask_workers: int = Field(2, ge=1)  # local cluster size when no address is given
    partition_rows: int = Field(1_000_000, ge=1000)  # rows per partition of a product build
    corpus_documents: int = Field(20_000, ge=100)  # documents per partition of a corpus build
    # Partitions processed at once by the "threads" runner; null = one per CPU. Each holds about
    # one partition in memory, so this bounds a build's memory whatever the dataset's size.
    partition_threads: int | None = Field(None, ge=1)

    def threads(self) -> int:
        """Partitions the "threads" runner processes at once."""
        return self.partition_threads or os.cpu_count() or 1


class CatalogExportSettings(Strict):
    """What the DCAT-AP export (catalog/dcat.jsonld) says about the exchange and its markets."""

    publisher: str = Field("databourse", min_length=1)  # the catalog's publisher (foaf:name)
    publisher_type: str | None = None  # an ADMS publisher type IRI
    description: str | None = None  # the catalog's; None: one naming publisher and products
    homepage: str | None = None
    email: str | None = None  # the contact point of products that name none
    languages: list[str] = []  # IRIs of the catalog's languages (EU language authority)
    license: str | None = None  # IRI of the catalog's licence
    legislation: dict[Jurisdiction, list[str]] = {}  # market -> its data-protection laws' IRIs
    # Where buyers reach the exchange (`bourse exchange serve --public-url`): the file exports
    # then link each version's page and Croissant card there; None: the store's own URIs
    # (file://, s3://), which only the exchange's operators can open.
    public_base_url: str | None = Field(None, pattern=r"^https?://[^\s/]+(/[^\s]*)?[^\s/]$")


class LineageSettings(Strict):
    """Where the OpenLineage events of every run go (databourse/standards/lineage.py,
    tasks/lineage.py)."""

    # file: JSON lines in <state_dir>/lineage/events.jsonl; http: POST to `url`; none: no events
    transport: Literal["file", "http", "none"] = "file"
    url: str | None = Field(None, pattern=r"^https?://[^\s]+$")  # e.g. Marquez, http://host:5000
    endpoint: str = "api/v1/lineage"
    # The environment variable holding the HTTP API key (never the key itself); null: no key.
    api_key_env: str | None = Field(None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    timeout_seconds: float = Field(5.0, gt=0, le=60)
    # Tries again after a 5xx or a failed connection, 0.2 s then 0.4 s apart (the client's own
    # default, 5 tries over about 9 s, held every run that long when the endpoint was down).
    retries: int = Field(2, ge=0, le=5)
    # Datasets and jobs are in `databourse://<namespace>`; null = the artifact namespace.
    namespace: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.-]{0,62}$")

    @model_validator(mode="after")
    def _url_for_http(self) -> LineageSettings:
        if self.transport == "http" and not self.url:
            raise ValueError("transport http needs a url")
        return self


class Settings(Strict):
    state_dir: str = "state"
    storage: StorageSettings = StorageSettings()
    catalog_url: str = "sqlite:///state/catalog.db"
    pseudonym_key: SecretRef = SecretRef(
        env="DATABOURSE_PSEUDONYM_KEY", block="databourse-pseudonym-key"
    )
    audit_key: SecretRef = SecretRef(env="DATABOURSE_AUDIT_KEY", block="databourse-audit-key")
    # Key files (mode 0600), outside state_dir and the store; $DATABOURSE_KEY_DIR overrides.
    # null = $XDG_CONFIG_HOME/databourse/keys/<store id> (see databourse/keys.py).
    key_dir: str | None = None
    # Secret blocks are read only when the Prefect API requires authentication (an open API
    # returns block values to anyone); PREFECT_API_AUTH_STRING or PREFECT_API_KEY also says so.
    prefect_api_authenticated: bool = False
    pii_threshold: float = Field(0.8, gt=0, le=1)  # share of values that must match to classify
    pii_sample_rows: int = Field(2000, ge=10)
    # A messy column (typos, placeholders such as N/A or 000, numbers of another country) is
    # classified when this share of its non-empty values are of one category, in the sample and
    # overall, and they are no chance matches (random codes that pass a check digit or a phone
    # plan are discounted: databourse/pii/dirty_columns.py); a column of random codes passes any
    # other category's checks at 0.1 of its values at most (a card's Luhn check).
    pii_dirty_threshold: float = Field(0.5, gt=0, le=1)
    # A column where this share of the checked values are whole identifiers of a category holds
    # that category, classified or not (a messy column of 70% phone numbers is not clean): an
    # undeclared one stops the product (screening.check_declarations). Random digit codes pass
    # a card's IIN and Luhn check up to about 3% of the time: keep it above that.
    pii_undeclared_min_share: float = Field(0.05, gt=0, le=1)
    # Identifiers inside a product's text: one of a checksum category (resident ids, NRIC, HK id,
    # cards, IBAN) stops the version; of a weaker one (phone, email, IP, name, plate) a column may
    # hold at most this share of its values before it stops (detector noise, never a real leak).
    pii_embedded_max_share: float = Field(0.001, ge=0, le=1)
    approval_timeout_seconds: int = Field(7 * 24 * 3600, ge=1)
    # The longest access a grant may give (it also ends with the approval it rests on).
    grant_max_days: int = Field(365, ge=1, le=3650)
    # An approval given "for later versions" carries over only while its audited answer is at
    # most this old; after that the next version is asked again (transfer gate, trail_state).
    carry_over_max_age_days: int = Field(365, ge=1, le=3650)
    ingest: IngestLimits = IngestLimits()  # default caps on a drop (a dataset may set its own)
    # Folders (or s3:// prefixes) a run's `source` may name besides its own landing folder: a
    # list for every provider, or a mapping of provider id to its own list (tenants apart). The
    # key folder, state folder and the store's other zones are refused whatever this lists.
    source_roots: list[str] | dict[str, list[str]] = []
    runs: RunSettings = RunSettings()
    # Starts every Prefect artifact key (`<namespace>-product-...`), so two environments that
    # share a Prefect server never replace each other's artifacts; null = a short hash of the
    # store root (tasks/reporting.py).
    artifact_namespace: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,23}$")
    catalog_export: CatalogExportSettings = CatalogExportSettings()
    lineage: LineageSettings = LineageSettings()

    def roots_of(self, provider: str) -> list[str]:
        """The source_roots a run of `provider` may read."""
        if isinstance(self.source_roots, dict):
            return list(self.source_roots.get(provider, []))
        return list(self.source_roots)
