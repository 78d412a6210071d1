"""Attacks on the keys (issue 15, 8): read through the Prefect API, weak keys, a lost key.

The insider reaches the Prefect API without credentials (`POST /block_documents/filter` with
`include_secrets`), sets a weak key, or loses the key and runs `bourse secrets init` again.
Each is done through the real CLI and API; each must find nothing, or be refused by name.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import TEST_AUDIT_KEY, TEST_KEY
from helpers import api_post, bourse, make_project

from databourse import keys
from databourse.errors import KeyRefused
from databourse.storage.opening import open_store

WEAK = {
    "one repeated letter": "a" * 32,
    "too short": "Xk3vQ9pLm2Rt7wZa",
    "two symbols": "01" * 24,
    "a sequence": "abcdefghijklmnopqrstuvwxyz012345",
    "a short pattern repeated": "k8#Lq2@zP0$w" * 3,
}


def env_for(project: Path, key_dir: Path, **extra: str) -> dict[str, str]:
    """The CLI's environment on `project`, with no key set in the environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABOURSE_PSEUDONYM_KEY", "DATABOURSE_AUDIT_KEY")
    }
    env.update(
        {"DATABOURSE_CONFIG_DIR": str(project / "configs"), "DATABOURSE_KEY_DIR": str(key_dir)}
    )
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess (never raises: the test reads rc, stdout and stderr)."""
    return bourse(env, *args, check=False)


@pytest.mark.prefect
def test_the_prefect_api_hands_out_no_key(prefect_api: str, tmp_path: Path) -> None:
    """`bourse secrets init` then an unauthenticated client asks the API for every secret."""
    project = make_project(tmp_path / "project")
    env = env_for(project, tmp_path / "keys", PREFECT_API_URL=prefect_api)
    made = cli(env, "secrets", "init")
    assert made.returncode == 0, made.stderr
    files = sorted((tmp_path / "keys").iterdir())
    assert [f.name for f in files] == ["audit-default.key", "pseudonym-default.key"]
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    found = api_post(f"{prefect_api}/block_documents/filter", {"include_secrets": True})
    assert found.status_code == 200
    text = found.text
    for f in files:
        assert f.read_text().strip() not in text
    assert "databourse-pseudonym-key" not in text and "databourse-audit-key" not in text


@pytest.mark.prefect
def test_a_secret_block_on_an_open_api_is_not_used(prefect_api: str, tmp_path: Path) -> None:
    """A Secret block left from before (readable by anyone on an open API) is not read."""
    from prefect.blocks.system import Secret

    Secret(value="Zq8rW3nB6tY1uK4pL7sD2fG5hJ9cV0xM").save(  # type: ignore[call-arg]
        "databourse-pseudonym-key", overwrite=True
    )
    project = make_project(tmp_path / "project")
    env = env_for(project, tmp_path / "keys", PREFECT_API_URL=prefect_api)
    made = cli(env, "secrets", "init")
    assert made.returncode == 0, made.stderr
    assert "pseudonym key: generated a random local key" in made.stdout
    assert "Secret block" not in made.stdout


@pytest.mark.parametrize("weak", WEAK.values(), ids=WEAK.keys())
def test_weak_keys_are_refused_by_name(weak: str, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    env = env_for(project, tmp_path / "keys", DATABOURSE_PSEUDONYM_KEY=weak)
    refused = cli(env, "secrets", "init")
    assert refused.returncode == 1
    assert "the key in $DATABOURSE_PSEUDONYM_KEY is weak" in refused.stderr, refused.stderr
    assert weak not in refused.stdout + refused.stderr
    with pytest.raises(KeyRefused, match="is weak"):
        keys.check_strength(weak.encode(), "test")


def test_strong_keys_pass() -> None:
    for key in (TEST_KEY, TEST_AUDIT_KEY, "Xk3vQ9pLm2Rt7wZa8YcN4bHs6JdF1gEu"):
        keys.check_strength(key.encode(), "test")


def test_a_weak_or_exposed_key_file_is_refused(tmp_path: Path) -> None:
    place = keys.KeyPlace("audit", "NO_SUCH_VARIABLE", tmp_path / "keys", (tmp_path / "state",))
    (tmp_path / "keys").mkdir()
    place.file("default").write_text("a" * 40)
    place.file("default").chmod(0o600)
    with pytest.raises(KeyRefused, match=f"the key in {place.file('default')} is weak"):
        keys.read(place)
    place.file("default").write_text(TEST_AUDIT_KEY)
    place.file("default").chmod(0o644)
    with pytest.raises(KeyRefused, match="group or others can read it"):
        keys.read(place)
    inside = keys.KeyPlace("audit", "NO_SUCH_VARIABLE", tmp_path / "state" / "k", place.forbidden)
    with pytest.raises(KeyRefused, match="is inside"):
        keys.create(inside)
    assert not (tmp_path / "state" / "k" / "audit-default.key").exists()


def test_a_key_file_inside_the_project_state_is_refused_by_the_cli(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    env = env_for(project, project / "state" / "keys")
    refused = cli(env, "secrets", "init")
    assert refused.returncode == 1 and "is inside" in refused.stderr, refused.stderr
    assert not (project / "state" / "keys" / "pseudonym-default.key").exists()


def test_a_lost_key_cannot_start_a_new_series_under_its_version(tmp_path: Path) -> None:
    """The key file is lost; `secrets init` again refuses instead of making a new default key."""
    project = make_project(tmp_path / "project")
    env = env_for(project, tmp_path / "keys")
    assert cli(env, "secrets", "init").returncode == 0
    lost = tmp_path / "keys" / "pseudonym-default.key"
    old_id = keys.key_id("pseudonym", lost.read_bytes().strip())
    lost.unlink()
    again = cli(env, "secrets", "init")
    assert again.returncode == 1
    assert "the pseudonym key was lost" in again.stderr and old_id in again.stderr
    assert not lost.exists()


def test_another_key_under_a_recorded_version_is_refused(tmp_path: Path) -> None:
    """A different key put in place of the recorded one: refused, saying to rotate."""
    project = make_project(tmp_path / "project")
    env = env_for(project, tmp_path / "keys")
    assert cli(env, "secrets", "init").returncode == 0
    swapped = cli({**env, "DATABOURSE_PSEUDONYM_KEY": TEST_KEY}, "secrets", "init")
    assert swapped.returncode == 1
    assert "this store recorded id" in swapped.stderr and "rotate" in swapped.stderr
    assert TEST_KEY not in swapped.stdout + swapped.stderr


def test_key_ids_are_bound_once_in_the_store(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "store"))
    key = keys.Key("pseudonym", "v2", "test", TEST_KEY.encode())
    keys.bind(store, key)
    keys.bind(store, key)  # the same key again is fine
    assert keys.recorded_id(store, "pseudonym", "v2") == key.key_id
    assert key.key_id not in (hashlib.sha256(TEST_KEY.encode()).hexdigest()[:16], TEST_KEY)
    with pytest.raises(KeyRefused, match="rotate"):
        keys.bind(store, keys.Key("pseudonym", "v2", "test", TEST_AUDIT_KEY.encode()))


def test_the_manifest_key_id_is_the_recorded_key_id() -> None:
    """Manifests record `key_id` per pseudonymized column: the same id the store binds."""
    from databourse.privacy.pseudonyms import key_fingerprint

    assert key_fingerprint(TEST_KEY.encode()) == keys.key_id("pseudonym", TEST_KEY.encode())


def test_the_pipeline_refuses_a_weak_key_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tasks read keys through the same check: a repeated letter never pseudonymizes."""
    from tasks import resources

    monkeypatch.setenv("DATABOURSE_PSEUDONYM_KEY", "a" * 32)
    with pytest.raises(KeyRefused, match=r"\$DATABOURSE_PSEUDONYM_KEY is weak") as info:
        resources.pseudonym_key()
    assert "a" * 32 not in str(info.value)
    monkeypatch.setenv("DATABOURSE_AUDIT_KEY", "a" * 32)
    with pytest.raises(KeyRefused, match=r"\$DATABOURSE_AUDIT_KEY is weak"):
        resources.audit_keys()
