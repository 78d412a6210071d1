"""Seeded, deterministic sample drops (KL sensor readings, Shenzhen orders, KL chat transcripts)
for demo and tests."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from databourse_samples.demo_chats import chat_bytes, chat_documents
from databourse_samples.demo_orders import ORDER_COLUMNS, order_rows
from databourse_samples.demo_sensors import SENSOR_COLUMNS, sensor_rows

logger = logging.getLogger(__name__)

DROP_DATE = "2026-11-20"
BadKind = Literal["ragged", "binary", "empty", "missing_column"]


@dataclass(frozen=True)
class SampleDrop:
    """One generated landing file."""

    provider: str
    dataset: str
    path: Path
    rows: int


def generate_drops(
    landing_dir: Path, *, seed: int = 20261120, scale: float = 1.0
) -> list[SampleDrop]:
    """Write both sample drops under `landing_dir`; same seed and scale give the same bytes."""
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError("scale must be a positive finite number")
    # One Random per dataset, so a change to one generator leaves the other file's bytes alone.
    sensors = sensor_rows(random.Random(_sub_seed(seed, "my-buildops/sensor_readings")), scale)
    orders = order_rows(random.Random(_sub_seed(seed, "sz-retail/customer_orders")), scale)
    outputs = (
        ("my-buildops", "sensor_readings", f"readings-{DROP_DATE}.csv", SENSOR_COLUMNS, sensors),
        ("sz-retail", "customer_orders", f"orders-{DROP_DATE}.csv", ORDER_COLUMNS, orders),
    )
    drops = []
    for provider, dataset, name, header, rows in outputs:
        drop = SampleDrop(provider, dataset, landing_dir / provider / dataset / name, len(rows))
        data = _csv_bytes(header, rows)
        _atomic_write(drop.path, data)
        digest = hashlib.sha256(data).hexdigest()
        logger.info(
            "wrote sample drop %s/%s: %d rows, sha256 %s", provider, dataset, len(rows), digest
        )
        drops.append(drop)
    return drops


def generate_corpus_drop(
    landing_dir: Path, *, seed: int = 20261120, scale: float = 1.0
) -> SampleDrop:
    """Write the chat transcripts of my-chatdesk/chat_transcripts (JSON Lines) under
    `landing_dir`; same seed and scale give the same bytes."""
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError("scale must be a positive finite number")
    docs = chat_documents(random.Random(_sub_seed(seed, "my-chatdesk/chat_transcripts")), scale)
    name = f"chats-{DROP_DATE}.jsonl"
    drop = SampleDrop(
        "my-chatdesk", "chat_transcripts", landing_dir / "my-chatdesk" / name, len(docs)
    )
    data = chat_bytes(docs)
    _atomic_write(drop.path, data)
    logger.info("wrote sample drop my-chatdesk/chat_transcripts: %d documents", len(docs))
    return drop


def write_bad_drop(path: Path, kind: BadKind) -> Path:
    """Write a small broken file (for the sensor_readings contract) that ingest must quarantine."""
    rows = sensor_rows(random.Random(_sub_seed(0, f"bad/{kind}")), 0.0, n_rows=8)
    if kind == "empty":
        data = b""
    elif kind == "binary":
        # What a mis-sent spreadsheet looks like: a zip header and bytes that are not UTF-8.
        data = b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(0x80, 0x100)) + b"\xff\xfe\x00\xc3("
    elif kind == "ragged":
        rows[3] = rows[3][:-2]  # a row that lost its last two cells
        rows[5] = [*rows[5], "EXTRA"]
        data = _csv_bytes(SENSOR_COLUMNS, rows)
    elif kind == "missing_column":
        drop = SENSOR_COLUMNS.index("co2_ppm")
        header = tuple(c for i, c in enumerate(SENSOR_COLUMNS) if i != drop)
        data = _csv_bytes(header, [[v for i, v in enumerate(r) if i != drop] for r in rows])
    else:
        raise ValueError(f"unknown bad drop kind {kind!r}")
    _atomic_write(path, data)
    logger.info("wrote bad sample drop (%s): %d bytes", kind, len(data))
    return path


def _sub_seed(seed: int, name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:8], "big")


def _csv_bytes(header: tuple[str, ...], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180: CRLF, minimal quoting
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
