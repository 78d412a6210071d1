"""Who holds a concurrency slot, and freeing the slots whose holders are gone.

Prefect 3.8.8 keeps a slot's lease in the server's lease storage; the project configures the
filesystem one (`$PREFECT_HOME/concurrency_leases/<lease id>.json`), so leases survive a server
restart and a dead holder's lease expires. Each slot a run of ours takes is also registered here
(`state/run/slots/<flow run id>.json`: pid, host, process start) so that a holder killed on this
machine is known dead at once rather than when its lease runs out.

A lease is reclaimed when it expired, when its holder's flow run ended, or when its holder
process on this host is gone; slots counted by a limit with no lease at all (leases lost with the
memory lease storage) are released too.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.responses import GlobalConcurrencyLimitResponse
from prefect.exceptions import ObjectNotFound
from prefect.settings import get_current_settings
from prefect.states import Crashed

log = logging.getLogger(__name__)
PREFIX = "databourse-provider-"


@dataclass(frozen=True)
class Lease:
    """One lease read from the lease storage."""

    id: str
    limit_ids: list[str]
    slots: int
    holder_run: str | None
    expires: dt.datetime

    def expired(self, now: dt.datetime) -> bool:
        return self.expires < now


def lease_dir() -> Path:
    """Where the server's filesystem lease storage keeps its leases (same PREFECT_HOME)."""
    return get_current_settings().home / "concurrency_leases"


def read_leases(folder: Path | None = None) -> list[Lease]:
    """Every lease in the storage folder (none when the server keeps them elsewhere)."""
    out = []
    for path in sorted((folder or lease_dir()).glob("*.json")):
        try:
            UUID(path.stem)
            data = json.loads(path.read_text())
        except (ValueError, OSError):
            continue  # the expiration index, a temp file, or one just revoked
        meta = data.get("metadata") or {}
        holder = meta.get("holder") or {}
        out.append(
            Lease(
                id=data["id"],
                limit_ids=list(data["resource_ids"]),
                slots=int(meta.get("slots") or 0),
                holder_run=holder.get("id") if holder.get("type") == "flow_run" else None,
                expires=dt.datetime.fromisoformat(data["expiration"]),
            )
        )
    return out


# --- the registry of our own holders ----------------------------------------------------------


def registry(state: Path) -> Path:
    return state / "run" / "slots"


def register(state: Path, flow_run_id: str) -> Path:
    """Record that this process holds a slot for `flow_run_id`; returns the file to remove."""
    folder = registry(state)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{flow_run_id}.json"
    me = {"pid": os.getpid(), "host": socket.gethostname(), "start": _start_ticks(os.getpid())}
    path.write_text(json.dumps(me))
    return path


def holder_gone(state: Path, flow_run_id: str) -> bool:
    """True when the registered holder of `flow_run_id` ran on this host and has exited."""
    try:
        me = json.loads((registry(state) / f"{flow_run_id}.json").read_text())
    except (OSError, ValueError):
        return False
    if me.get("host") != socket.gethostname():
        return False  # another machine's process: its lease expiry tells
    start = _start_ticks(int(me["pid"]))
    return start is None or start != me.get("start")


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks (tells a reused pid apart), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "?"
        return "?"  # no /proc: alive, start unknown
    fields = stat.rsplit(")", 1)[-1].split()
    return None if fields[0] in ("Z", "X") else fields[19]


# --- holders and reclaim ----------------------------------------------------------------------


def provider_limits(client: SyncPrefectClient) -> list[GlobalConcurrencyLimitResponse]:
    """The per-provider global concurrency limits."""
    found = client.read_global_concurrency_limits(limit=200)
    return [g for g in found if g.name.startswith(PREFIX)]


def holders(
    client: SyncPrefectClient, limit: GlobalConcurrencyLimitResponse
) -> list[dict[str, Any]]:
    """Who holds the limit's slots: lease, flow run (name, state), expiry."""
    out = []
    for lease in read_leases():
        if str(limit.id) not in lease.limit_ids:
            continue
        run = _run(client, lease.holder_run)
        out.append(
            {
                "lease": lease.id,
                "slots": lease.slots,
                "run_id": lease.holder_run,
                "run": run.name if run else None,
                "state": run.state.name if run and run.state else None,
                "expires": lease.expires.isoformat(timespec="seconds"),
            }
        )
    return out


def reclaim(client: SyncPrefectClient, state: Path) -> list[str]:
    """Free every provider slot whose holder is gone; return what was freed (idempotent)."""
    now = dt.datetime.now(dt.UTC)
    done: list[str] = []
    leases = read_leases()
    for lease in leases:
        why = _gone_because(client, state, lease, now)
        if why is None:
            continue
        client.release_concurrency_slots_with_lease(UUID(lease.id))
        _remove(registry(state) / f"{lease.holder_run}.json")
        _crash(client, lease.holder_run, why)
        done.append(f"freed {lease.slots} slot(s) of lease {lease.id}: {why}")
    live = [lease for lease in read_leases() if not lease.expired(now)]
    if not lease_dir().is_dir():
        return done  # leases kept elsewhere: only the server knows which slots are held
    for limit in provider_limits(client):
        held = sum(x.slots for x in live if str(limit.id) in x.limit_ids)
        orphans = limit.active_slots - held
        if orphans > 0:
            client.release_concurrency_slots([limit.name], orphans, occupancy_seconds=1.0)
            done.append(f"freed {orphans} slot(s) of {limit.name} held by no lease")
    for line in done:
        log.warning("reclaim: %s", line)
    return done


def _gone_because(
    client: SyncPrefectClient, state: Path, lease: Lease, now: dt.datetime
) -> str | None:
    if lease.expired(now):
        return f"lease expired {lease.expires.isoformat(timespec='seconds')}"
    if lease.holder_run is None:
        return None
    if holder_gone(state, lease.holder_run):
        return f"holder process of flow run {lease.holder_run} is gone"
    run = _run(client, lease.holder_run)
    if run is not None and run.state is not None and run.state.is_final():
        return f"holder flow run {lease.holder_run} is {run.state.name}"
    return None


def _run(client: SyncPrefectClient, run_id: str | None) -> Any:
    if run_id is None:
        return None
    try:
        return client.read_flow_run(UUID(run_id))
    except (ObjectNotFound, ValueError):
        return None


def _crash(client: SyncPrefectClient, run_id: str | None, why: str) -> None:
    """Mark a dead holder's run Crashed (it can report nothing itself)."""
    run = _run(client, run_id)
    if run is None or run.state is None or run.state.is_final():
        return
    client.set_flow_run_state(run.id, Crashed(message=f"reclaimed its concurrency slot: {why}"))


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
