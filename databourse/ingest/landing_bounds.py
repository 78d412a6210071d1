"""Where an ingest may read a source from: the landing zone, the configured roots, the CLI's paths.

A run's `source` is a parameter anyone with the Prefect API sets, so the pipeline reads only:

    the landing zone          the run's own `landing/<provider>/<dataset>/` folder only: a drop of
                              another provider or dataset is refused, whoever names it (tenants)
    settings `source_roots`   more folders or s3:// prefixes a deployment may read, for every
                              provider (a list) or per provider (a mapping of provider to list)
    any other path            only when named in this process (the CLI, a script), not by a run
                              an executor started from the API (its parameters are anyone's)

and never, whoever asks (the CLI included): the key folder, the state folder and the store's other
zones (raw, staging, products, quarantine, audit), nor /proc, /sys, /dev, /etc, /run, /boot.
Paths are compared as given, made absolute without resolving links; a source reached through a
link is refused by `readers_bytes.regular_file` whatever its place.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from databourse.errors import IngestRejected

SYSTEM_ROOTS = ("/proc", "/sys", "/dev", "/etc", "/run", "/boot")


@dataclass(frozen=True)
class SourceBounds:
    """The places a source may and may not be read from."""

    landing: str  # the landing zone: a local folder or an s3:// prefix
    own: str = ""  # the run's own landing/<provider>/<dataset> folder or prefix
    roots: tuple[str, ...] = ()  # settings `source_roots`
    denied: tuple[str, ...] = ()  # key folder, state folder, the store root
    caller_named: bool = False  # named in this process (CLI, script), not by an API run's params

    def check(self, source: str) -> None:
        """IngestRejected unless `source` is inside the landing zone, a root or an explicit path."""
        place = source if source.startswith("s3://") else _absolute(source)
        if _inside(place, [self.landing]):
            if not self.own or _inside(place, [self.own]):
                return
            raise IngestRejected(
                f"{source}: a drop in another provider's or dataset's landing folder; a run reads"
                f" only its own ({self.own})",
                file=source,
            )
        if _inside(place, [*self.denied, *SYSTEM_ROOTS]):
            raise IngestRejected(
                f"{source}: inside the key folder, the state folder, the store or a system"
                " folder; the pipeline never reads a source there",
                file=source,
            )
        if self.caller_named or _inside(place, self.roots):
            return
        raise IngestRejected(
            f"{source}: outside the landing zone and the settings' source_roots; upload the file"
            " to the landing zone, or add its folder to source_roots",
            file=source,
        )


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def _inside(place: str, roots: Iterable[str]) -> bool:
    """Whether `place` is one of `roots` or below one (by path segments, not by prefix)."""
    for root in roots:
        base = root.rstrip("/") if root.startswith("s3://") else _absolute(root).rstrip("/")
        if base and (place == base or place.startswith(base + "/")):
            return True
    return False
