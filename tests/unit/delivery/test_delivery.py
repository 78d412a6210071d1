"""Delivery: grants only where a version is offered; S3 links really download the exact bytes."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from helpers import make_project, publish_sample_version, with_sample_product
from s3_server import make_bucket, moto_server, use_dummy_aws_env

from databourse.config import Config, load_config
from databourse.delivery.grants import expiry, grant_access
from databourse.errors import CatalogError, TransferNotApproved

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    """The repo's configs with p1's product config (publish_sample_version's product)."""
    return load_config(with_sample_product(make_project(tmp_path / "project")) / "configs")


def test_expiry_parsing() -> None:
    assert expiry("24h", NOW) == NOW + dt.timedelta(hours=24)
    assert expiry("7d", NOW) == NOW + dt.timedelta(days=7)
    assert expiry("2026-12-01", NOW) == dt.datetime(2026, 12, 1, 23, 59, 59, tzinfo=dt.UTC)
    for bad in ("tomorrow", "2026-01-01", "0h"):
        with pytest.raises(CatalogError):
            expiry(bad, NOW)


def test_grant_in_an_available_market_is_recorded(tmp_path: Path, cfg: Config) -> None:
    cat, store = publish_sample_version(tmp_path)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    given = grant_access(
        cfg, cat, store, "p1", "1.0.0", "Shenzhen Robotics", "CN", until, purpose="research"
    )
    [f] = given["files"]
    assert set(f) == {"path", "bytes", "sha256"}  # no link: the exchange delivers (issue 20)
    path = tmp_path / "store" / "products" / "p1" / "1.0.0" / f["path"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == f["sha256"]
    assert "url" not in str(given) and "file://" not in str(given)
    [recorded] = cat.grants("p1")
    assert (recorded["buyer"], recorded["market"], recorded["version"]) == (
        "Shenzhen Robotics",
        "CN",
        "1.0.0",
    )
    assert recorded["content_hash"] == given["content_hash"]


def test_no_grant_without_approval_or_after_withdrawal(tmp_path: Path, cfg: Config) -> None:
    cat, store = publish_sample_version(tmp_path)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    with pytest.raises(TransferNotApproved):  # MY waits for an approval
        grant_access(cfg, cat, store, "p1", "1.0.0", "KL Mart", "MY", until, purpose="research")
    with pytest.raises(TransferNotApproved):  # never decided
        grant_access(cfg, cat, store, "p1", "1.0.0", "Someone", "SG", until, purpose="research")
    cat.withdraw_version("p1", "1.0.0", reason="recalled")
    with pytest.raises(TransferNotApproved):
        grant_access(
            cfg, cat, store, "p1", "1.0.0", "Shenzhen Robotics", "CN", until, purpose="research"
        )
    assert cat.grants("p1") == []


def test_a_grant_on_s3_hands_out_no_presigned_link(
    tmp_path: Path, cfg: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A presigned URL outlives a revocation or a withdrawal: only the exchange delivers."""
    use_dummy_aws_env(monkeypatch)
    with moto_server() as endpoint:
        make_bucket(endpoint, "exchange")
        cat, store = publish_sample_version(
            tmp_path, store_root="s3://exchange/zones", endpoint_url=endpoint
        )
        until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        given = grant_access(
            cfg, cat, store, "p1", "1.0.0", "Shenzhen Robotics", "CN", until, purpose="research"
        )
        [f] = given["files"]
        assert set(f) == {"path", "bytes", "sha256"}
        assert "X-Amz-" not in str(given) and endpoint not in str(given)
