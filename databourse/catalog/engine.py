"""The catalog's database plumbing: engines, migrations, retried transactions, version lookups."""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, create_engine, event, inspect, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from databourse import keys
from databourse.catalog import trail as audit
from databourse.catalog.models import Version, utcnow
from databourse.catalog.trail_fold import TRAIL_CACHE, TrailCache
from databourse.errors import CatalogError, DataBourseError, VersionNotFound
from databourse.keys import Key
from databourse.storage.store import ObjectStore

__all__ = [
    "MIGRATIONS",
    "SQLITE_TIMEOUT_S",
    "CatalogEngine",
    "check_market",
    "make_engine",
    "newest_first",
]

# The catalog modules share one logger, so its name did not change when catalog.py was split.
log = logging.getLogger("databourse.catalog")
T = TypeVar("T")

_MARKET = re.compile(r"^[A-Z]{2}$")
_WRITE_OPTION = "databourse_write"
MIGRATIONS = Path(__file__).parents[1] / "migrations"
SCHEMA_HEAD = "0009"  # the newest migration's revision (tests/unit/catalog: Alembic's head)
_ATTEMPTS = 8
_UNREACHABLE_ATTEMPTS = 4  # about 7 s of waiting for a locked or restarting database
SQLITE_TIMEOUT_S = 30.0


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own BEGIN handling is disabled so that `_sqlite_begin` decides the lock mode.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # Writers take the write lock up front (waiting up to the timeout), so two of them can never
    # read the same "latest version" and then both try to insert the next one.
    write = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_engine(url: str) -> Engine:
    """An engine for a catalog URL: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL."""
    try:
        sa_url = make_url(url)
    except ArgumentError as exc:
        raise CatalogError("the catalog URL cannot be parsed", reason=str(exc)) from exc
    if sa_url.drivername in ("postgresql", "postgres"):
        sa_url = sa_url.set(drivername="postgresql+psycopg")
    backend = sa_url.get_backend_name()
    if backend == "sqlite":
        database = sa_url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(sa_url, connect_args={"timeout": SQLITE_TIMEOUT_S})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        return create_engine(sa_url, pool_pre_ping=True)
    raise CatalogError(f"unsupported catalog database {backend!r}", backend=backend)


def catalog_identity(url: str) -> str:
    """A short name of the catalog behind `url` that holds across processes and credentials.

    Two catalogs may share one Prefect server (a staging and a production exchange, two
    checkouts, the test suite): each publish run carries its catalog's identity (tag and
    idempotency key), so that one catalog neither reuses nor judges another's runs. The query
    counts (a `search_path` option names another schema, another catalog); passwords never enter
    it, so rotating a database password keeps the identity.
    """
    sa_url = make_url(url)
    if sa_url.drivername in ("postgresql", "postgres"):
        sa_url = sa_url.set(drivername="postgresql+psycopg")
    query = {k: v for k, v in sa_url.query.items() if "password" not in k.lower()}
    plain = URL.create(
        sa_url.drivername, sa_url.username, None, sa_url.host, sa_url.port, sa_url.database, query
    ).render_as_string(hide_password=False)
    return hashlib.sha256(plain.encode()).hexdigest()[:16]


def check_market(market: str) -> None:
    """Refuse (CatalogError) anything but a 2-letter upper-case jurisdiction code."""
    if not isinstance(market, str) or not _MARKET.match(market):
        raise CatalogError(
            f"market must be a 2-letter upper-case code, got {market!r}", market=market
        )


def newest_first(product_id: str) -> Select[tuple[Version]]:
    """The product's versions, highest version number first."""
    return (
        select(Version)
        .where(Version.product_id == product_id)
        .order_by(Version.major.desc(), Version.minor.desc(), Version.patch.desc())
    )


class CatalogEngine:
    """The catalog database behind one URL: connections, schema and transactions."""

    def __init__(
        self,
        url: str,
        audit_keys: Callable[[], list[Key]] | None = None,
        anchor_store: Callable[[], ObjectStore] | None = None,
        trail_cache: TrailCache | None = None,
    ) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.identity = catalog_identity(url)
        # Where each write transaction that appended to the audit trail anchors its new head,
        # after it commits (None: nowhere; `bourse audit anchor` and verification then tell).
        self.anchor_store = anchor_store
        # The audit trail's keys (signing key first), which the database never holds; without a
        # resolver, the environment's $DATABOURSE_AUDIT_KEY (see databourse/keys.py).
        # The anchor store rides along too: every fold of the trail checks its anchors there.
        # An anchor above the head a transaction's snapshot sees is judged by the chain as
        # committed now (a transaction of its own: never the write lock), not as a truncation.
        fresh = sessionmaker(bind=self.engine, expire_on_commit=False)
        info: dict[str, Any] = {
            "audit_keys": audit_keys or keys.from_environment,
            "anchor_store": anchor_store,
            audit.FRESH_READS: fresh.begin,
            # A long-running reader's fold of the trail, extended event by event (trail_fold).
            TRAIL_CACHE: trail_cache,
        }
        self._reads = sessionmaker(bind=self.engine, expire_on_commit=False, info=info)
        self._writes = sessionmaker(
            bind=self.engine.execution_options(**{_WRITE_OPTION: True}),
            expire_on_commit=False,
            info=info,
        )

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def create_schema(self) -> None:
        """Migrate the catalog to the newest schema (Alembic), creating it on an empty database.

        Serialized against other processes starting at the same time: BEGIN IMMEDIATE on SQLite,
        an advisory lock on PostgreSQL. A database made by the pre-migration `create_all` is
        stamped as the baseline first. A database already at SCHEMA_HEAD is left alone without
        importing Alembic (0.1-0.15 s in every process that opens the catalog).
        """
        if self.schema_revision() == SCHEMA_HEAD:
            return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.execution_options(**{_WRITE_OPTION: True}).begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7263519)"))
            cfg.attributes["connection"] = conn
            tables = set(inspect(conn).get_table_names())
            if "versions" in tables and "alembic_version" not in tables:
                command.stamp(cfg, "0001")
            command.upgrade(cfg, "head")

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (None before any migration)."""
        with self.engine.connect() as conn:
            if "alembic_version" not in inspect(conn).get_table_names():
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    # --- transactions -------------------------------------------------------------------------

    def _now(self) -> datetime:
        """The catalog's clock (Catalog overrides it so that tests can set the time)."""
        return utcnow()

    def _write(self, what: str, work: Callable[[Session], T]) -> T:
        """Run `work` in one write transaction, retrying when a concurrent writer won a race."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self._writes.begin() as session:
                    result = work(session)
                self._anchor(what, session)
                return result
            except IntegrityError as exc:
                if attempt == _ATTEMPTS:
                    raise CatalogError(
                        f"{what}: conflicting concurrent writes, gave up after {attempt} attempts",
                        operation=what,
                    ) from exc
                log.info("%s: concurrent write conflict, retry %d", what, attempt)
                time.sleep(random.uniform(0.0, 0.02 * attempt))
            except OperationalError as exc:  # SQLite locked, PostgreSQL connection dropped
                # Only a lock is retried: it proves nothing was committed. A connection lost
                # during a commit may have committed, and a retry could record an event twice.
                if attempt >= _UNREACHABLE_ATTEMPTS or not _locked(exc):
                    raise CatalogError(
                        f"{what}: the catalog database is unreachable or locked"
                        f" ({_first_line(exc.orig)}), gave up after {attempt} attempts;"
                        " the transaction was rolled back, re-run when it answers",
                        operation=what,
                    ) from None
                log.warning("%s: catalog database locked, retry %d", what, attempt)
                time.sleep(min(0.5 * 2**attempt, 8.0))  # the pool re-connects (pre_ping)
        raise AssertionError("unreachable")

    def _anchor(self, what: str, session: Session) -> None:
        """Anchor the audit head a committed transaction appended (a failure is only logged)."""
        body = audit.appended_anchor(session)
        if body is None or self.anchor_store is None:
            return
        try:
            keyring = {k.key_id: k.material for k in audit.session_keys(session)}
            audit.write_anchor(self.anchor_store(), body, keyring.get(body["key_id"]))
        except (DataBourseError, OSError) as exc:  # committed: never retried; verify flags it
            log.warning("%s: audit event %s committed but not anchored: %s", what, body["seq"], exc)

    def _read(self, work: Callable[[Session], T]) -> T:
        with self._reads.begin() as session:
            return work(session)

    @staticmethod
    def _version_row(session: Session, product_id: str, version: str | None) -> Version:
        query = newest_first(product_id)
        if version is not None:
            query = query.where(Version.version == version)
        row = session.scalars(query.limit(1)).first()
        if row is None:
            raise VersionNotFound(
                f"no version {version or '(latest)'} of product {product_id!r} in the catalog",
                product=product_id,
                version=version,
            )
        return row


def _first_line(error: BaseException | None) -> str:
    """The driver's own message (not SQLAlchemy's, which quotes the statement's parameters)."""
    text = str(error).strip().splitlines()[0] if error is not None and str(error).strip() else ""
    return text[:200] or type(error).__name__


def _locked(error: OperationalError) -> bool:
    """SQLite's "database is locked" / "busy": another writer holds the file, nothing was done."""
    text = str(error.orig).lower()
    return "database is locked" in text or "database is busy" in text
