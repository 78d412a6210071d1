"""Secret keys, read in one place: the environment or a private key file, checked, bound to an id.

A key has a purpose ("pseudonym", "audit") and a version ("default", "v2", ...). It is read from
the environment variable (`$DATABOURSE_AUDIT_KEY`, a version `v2` from `$DATABOURSE_AUDIT_KEY__V2`),
else from `<key dir>/<purpose>-<version>.key`, a file only its owner may read (mode 0600) kept
outside the project's `state/` and the object store. The key dir defaults to
`$XDG_CONFIG_HOME/databourse/keys/<store id>` (`~/.config/...`), one folder per store root so two
checkouts never share keys by accident. (Prefect Secret blocks are read by the tasks layer, and
only when the Prefect API requires authentication: an open API returns block values to anyone.)

Every key is checked for strength wherever it comes from, and has a public id, an HMAC of a
constant under the key (never the key, never a plain hash of it). The first use of a
(purpose, version) records that id in the object store (`keys/<purpose>/<version>.json`, written
if absent); a later key with another id under the same version is refused: a lost key must be
replaced under a new version, never silently start a new series under the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import math
import os
import secrets
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from databourse.clock import iso, utcnow
from databourse.errors import KeyRefused, ObjectExists, ObjectNotFound, SecretMissing
from databourse.storage.store import ObjectStore

__all__ = [
    "AUDIT_ENV",
    "DEFAULT_VERSION",
    "MIN_KEY_BYTES",
    "OPT_OUT_AUTHOR",
    "Key",
    "KeyPlace",
    "bind",
    "check_strength",
    "create",
    "default_key_dir",
    "from_environment",
    "key_id",
    "keyed_digest",
    "name_digest",
    "name_digester",
    "normalized_name",
    "read",
    "recorded_id",
    "require",
]

MIN_KEY_BYTES = 32
MIN_DISTINCT_SYMBOLS = 8
MIN_ESTIMATED_BITS = 88  # symbol-frequency estimate; a random 32-character hex key has ~115
MAX_STEP_RUN = 8  # "abcdefgh", "12345678", "aaaaaaaa": a run this long is refused
DEFAULT_VERSION = "default"
AUDIT_ENV = "DATABOURSE_AUDIT_KEY"  # the audit key's variable when settings are not at hand
OPT_OUT_AUTHOR = "corpus-opt-out-author"  # the purpose of an opt-out request's author digests
_PRIVATE_MODE = 0o600


@dataclass(frozen=True)
class KeyPlace:
    """Where one purpose's keys are looked for: an environment variable, then a key folder."""

    purpose: str
    env: str
    key_dir: Path
    forbidden: tuple[Path, ...] = ()  # folders a key file must not be in (state/, the store)

    def env_name(self, version: str) -> str:
        """`$ENV` for the default version, `$ENV__V2` for version v2."""
        return self.env if version == DEFAULT_VERSION else f"{self.env}__{version.upper()}"

    def file(self, version: str) -> Path:
        """The key file of a version."""
        return self.key_dir / f"{self.purpose}-{version.lower()}.key"


@dataclass(frozen=True)
class Key:
    """A loaded key: its purpose, version, where it came from and its public id."""

    purpose: str
    version: str
    origin: str  # "$VARIABLE" or a file path, for messages
    material: bytes = field(repr=False)

    @property
    def key_id(self) -> str:
        return key_id(self.purpose, self.material)


def keyed_digest(material: bytes, purpose: str, value: str) -> str:
    """HMAC-SHA256 of `value` under a key derived from `material` for one `purpose` (a value
    recorded so, a name say, can be matched again by whoever holds the key, and by no one
    else: a plain hash of a name is found by hashing every name)."""
    return hmac.new(_derived(material, purpose), value.encode(), hashlib.sha256).hexdigest()


def _derived(material: bytes, purpose: str) -> bytes:
    return hmac.new(material, f"databourse/{purpose}".encode(), hashlib.sha256).digest()


def normalized_name(name: str) -> str:
    """A person's name as it is compared: NFKC, case-folded, single spaces, trimmed."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def name_digest(key_id: str, material: bytes, purpose: str, name: str) -> str:
    """`<key id>:<hex>`: the keyed digest of a normalized name, naming the key it was made
    under (so that it is matched under that key after the signing key rotates)."""
    return name_digester(key_id, material, purpose)(name)


def name_digester(key_id: str, material: bytes, purpose: str) -> Callable[[str], str]:
    """`name_digest` of one key and purpose, its key derived once (for many names)."""
    derived = _derived(material, purpose)

    def digest(name: str) -> str:
        keyed = hmac.new(derived, normalized_name(name).encode(), hashlib.sha256).hexdigest()
        return f"{key_id}:{keyed}"

    return digest


def key_id(purpose: str, material: bytes) -> str:
    """Public id of a key: sha256 of HMAC(key, purpose constant), 16 hex digits."""
    message = f"databourse/{purpose}-key-fingerprint/v1".encode()
    return hashlib.sha256(hmac.new(material, message, hashlib.sha256).digest()).hexdigest()[:16]


def default_key_dir(store_root: str) -> Path:
    """`$XDG_CONFIG_HOME/databourse/keys/<store id>` (or under ~/.config), per store root."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    store_id = hashlib.sha256(store_root.encode()).hexdigest()[:12]
    return base / "databourse" / "keys" / store_id


def check_strength(material: bytes, where: str) -> None:
    """Refuse (KeyRefused) a key too short, of too few symbols, repetitive or a sequence."""
    problem = _weakness(material)
    if problem:
        raise KeyRefused(
            f"the key in {where} is weak ({problem}); make a new one with "
            f'`python3 -c "import secrets; print(secrets.token_hex(32))"` '
            "or `bourse secrets init`",
            where=where,
            reason=problem,
        )


def _weakness(material: bytes) -> str | None:
    n = len(material)
    if n < MIN_KEY_BYTES:
        return f"{n} bytes, need at least {MIN_KEY_BYTES}"
    counts = Counter(material)
    if len(counts) < MIN_DISTINCT_SYMBOLS:
        return f"only {len(counts)} distinct symbols, need {MIN_DISTINCT_SYMBOLS}"
    bits = -sum(c * math.log2(c / n) for c in counts.values())
    if bits < MIN_ESTIMATED_BITS:
        return f"about {bits:.0f} bits by symbol frequency, need {MIN_ESTIMATED_BITS}"
    steps = [b - a for a, b in itertools.pairwise(material)]
    if sum(s in (-1, 0, 1) for s in steps) * 2 > len(steps):
        return "mostly runs of repeated or consecutive symbols"
    run = 1
    for before, step in itertools.pairwise(steps):
        run = run + 1 if step == before and step in (-1, 0, 1) else 1
        if run + 1 >= MAX_STEP_RUN:
            return f"holds a run of {MAX_STEP_RUN} repeated or consecutive symbols"
    if any(material == material[p:] + material[:p] for p in range(1, n // 2 + 1)):
        return "a short pattern repeated"
    return None


def read(place: KeyPlace, version: str = DEFAULT_VERSION) -> Key | None:
    """The key from the environment, else the key file; None when neither holds one."""
    env = place.env_name(version)
    value = os.environ.get(env)
    if value:
        material = value.encode()
        check_strength(material, f"${env}")
        return Key(place.purpose, version, f"${env}", material)
    path = place.file(version)
    if not path.exists():
        return None
    _check_file(path, place)
    material = path.read_bytes().strip()
    check_strength(material, str(path))
    return Key(place.purpose, version, str(path), material)


def _check_file(path: Path, place: KeyPlace) -> None:
    """Refuse a key file others can read, or one inside the project's state or the store."""
    _check_outside(path.parent, place)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyRefused(
            f"key file {path} has mode {mode:o}: group or others can read it; treat the key as "
            f"exposed (rotate to a new version), or if it is not, `chmod 600 {path}`",
            path=str(path),
        )


def _check_outside(folder: Path, place: KeyPlace) -> None:
    """Refuse a key folder inside the project's state or the store."""
    resolved = folder.resolve()
    for forbidden in place.forbidden:
        if resolved.is_relative_to(forbidden.resolve()):
            raise KeyRefused(
                f"key folder {folder} is inside {forbidden}, which the store's readers and "
                "backups reach; set key_dir (settings) or DATABOURSE_KEY_DIR to a folder outside "
                "them, move the key there and delete this copy",
                path=str(folder),
            )


def require(place: KeyPlace, version: str = DEFAULT_VERSION) -> Key:
    """The key, or SecretMissing naming where it was looked for and how to make one."""
    key = read(place, version)
    if key is None:
        raise SecretMissing(
            f"{place.purpose} key {version!r} not set: export {place.env_name(version)} or put it "
            f"in {place.file(version)} (mode 0600); `bourse secrets init` creates a random one",
            env=place.env_name(version),
            path=str(place.file(version)),
        )
    return key


def create(place: KeyPlace, version: str = DEFAULT_VERSION) -> Key:
    """Write a new random key file (mode 0600, never over an existing file) and return the key."""
    path = place.file(version)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_outside(path.parent, place)
    material = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(material + b"\n")
    return Key(place.purpose, version, str(path), material)


def _record_key(purpose: str, version: str) -> str:
    return f"keys/{purpose}/{version.lower()}.json"


def recorded_id(store: ObjectStore, purpose: str, version: str) -> str | None:
    """The key id recorded for (purpose, version), or None before its first use."""
    try:
        return str(json.loads(store.get_bytes(_record_key(purpose, version)))["key_id"])
    except ObjectNotFound:
        return None


def bind(store: ObjectStore, key: Key) -> None:
    """Record the key's id for its version on first use; refuse a key not the recorded one."""
    body = {
        "purpose": key.purpose,
        "version": key.version,
        "key_id": key.key_id,
        "at": iso(utcnow()),
    }
    try:
        store.put_bytes(
            _record_key(key.purpose, key.version), json.dumps(body).encode(), if_absent=True
        )
        return
    except ObjectExists:
        pass
    recorded = recorded_id(store, key.purpose, key.version)
    if recorded != key.key_id:
        raise KeyRefused(
            f"the {key.purpose} key {key.version!r} from {key.origin} has id {key.key_id}, "
            f"but this store recorded id {recorded} for that version: it is not the key the "
            "earlier data was made with. Restore that key, or rotate: add the new key under a "
            f"new version (e.g. {key.version}-2) and point the configuration at it",
            purpose=key.purpose,
            version=key.version,
            key_id=key.key_id,
            recorded=recorded,
        )


def from_environment(purpose: str = "audit", env: str = AUDIT_ENV) -> list[Key]:
    """The default key of a purpose from its environment variable alone ([] when unset)."""
    value = os.environ.get(env)
    if not value:
        return []
    check_strength(value.encode(), f"${env}")
    return [Key(purpose, DEFAULT_VERSION, f"${env}", value.encode())]
