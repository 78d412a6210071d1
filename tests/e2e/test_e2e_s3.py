"""The whole pipeline on an S3-compatible server (moto's server process), through the CLI."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import API_AUTH, API_AUTH_STRING, bourse, cli_env, make_project, stop_stack
from s3_server import DUMMY_AWS_ENV, client, make_bucket, moto_server

from databourse_samples.demo import generate_drops

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    project = make_project(tmp_path_factory.mktemp("e2e-s3") / "project")
    with moto_server() as endpoint:
        make_bucket(endpoint, "exchange")
        make_bucket(endpoint, "provider-inbox")
        env = cli_env(
            project,
            PREFECT_API_AUTH_STRING=API_AUTH_STRING,
            **DUMMY_AWS_ENV,
            DATABOURSE_STORE_ROOT="s3://exchange/zones",
            DATABOURSE_S3_ENDPOINT_URL=endpoint,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            env.pop(name, None)
        try:
            yield env
        finally:
            stop_stack(env)


def test_drop_from_s3_uri_published_on_s3(s3_env: dict[str, str], tmp_path: Path) -> None:
    endpoint = s3_env["DATABOURSE_S3_ENDPOINT_URL"]
    [drop] = [d for d in generate_drops(tmp_path, scale=0.2) if d.provider == "my-buildops"]
    s3 = client(endpoint)
    s3.upload_file(str(drop.path), "provider-inbox", "my-buildops/readings.csv")

    out = bourse(
        s3_env,
        "run",
        "my-buildops",
        "sensor_readings",
        "s3://provider-inbox/my-buildops/readings.csv",
    ).stdout
    assert "kl-building-environment@1.0.0 (new): publish run" in out and "Completed" in out

    keys = {
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="exchange", Prefix="zones/")
        for o in page.get("Contents", [])
    }
    raw = [k for k in keys if k.startswith("zones/raw/my-buildops/sensor_readings/")]
    assert any(k.endswith("/readings.csv") for k in raw)
    assert any(k.endswith("/_ingest.json") for k in raw)
    assert "zones/products/kl-building-environment/1.0.0/manifest.json" in keys
    assert "zones/products/kl-building-environment/1.0.0/part-00000.parquet" in keys
    raw_bytes = s3.get_object(Bucket="exchange", Key=next(k for k in raw if k.endswith(".csv")))
    assert raw_bytes["Body"].read() == drop.path.read_bytes()  # byte for byte

    shown = json.loads(
        bourse(s3_env, "catalog", "show", "kl-building-environment", "--json").stdout
    )
    [version] = shown["versions"]
    assert version["manifest_uri"] == (
        "s3://exchange/zones/products/kl-building-environment/1.0.0/manifest.json"
    )
    assert {a["market"]: a["status"] for a in version["availability"]} == {
        "MY": "available",
        "CN": "available",
        "SG": "available",
    }

    # The build's passes read the staged Parquet in checked byte ranges, not whole (issue 23)
    logs = httpx.post(
        f"http://127.0.0.1:{s3_env['DATABOURSE_PREFECT_PORT']}/api/logs/filter",
        json={"logs": {"level": {"ge_": 20}}},
        auth=API_AUTH,
        timeout=30,
    ).json()
    ranged = [log["message"] for log in logs if "in ranges, each block checked" in log["message"]]
    assert len(ranged) >= 2, [log["message"] for log in logs][-40:]  # pass 1 and pass 2
