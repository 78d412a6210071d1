"""Local file access to objects, whichever store holds them."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from databourse.storage import ObjectStore


@contextmanager
def local_copy(store: ObjectStore, key: str) -> Iterator[Path]:
    """The object as a local file: in place on the local store, downloaded from S3."""
    path = store.local_path(key)
    if path is not None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="databourse-") as tmp:
        target = Path(tmp) / key.rsplit("/", 1)[-1]
        store.download(key, target)
        yield target
