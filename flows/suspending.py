"""Suspending a flow run without the zombie automation taking it for dead.

The zombie automation (bourse/automations.py, Prefect's documented pattern) crashes a run when,
after one of its heartbeats, neither a heartbeat nor a final or paused state of that run reaches
the server within three beats. A run's heartbeats come from a thread of its process and travel
over the events websocket, which the process opens on its first event; the Suspended state is set
over HTTP. A run resumed and suspended again within a second or two (the second market of a
publish run) had its first heartbeat received *after* its Suspended event: that heartbeat opened a
window that nothing would close, and the automation crashed the suspended run. A beat ticking
between the state change and the end of the process does the same.

`suspend` therefore stops the run's heartbeat thread and delivers every event already emitted
before it asks for the Suspended state, so that state's event is the last the server gets from
the run. A suspension the run already went past (it re-executes from the top once answered)
suspends nothing: it returns the answer and the heartbeats go on.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.events.worker import EventsWorker
from prefect.flow_runs import suspend_flow_run

T = TypeVar("T")

_DELIVER_SECONDS = 30  # a server that takes longer to take the events is not one to suspend on


def suspend(form: type[T], key: str, timeout: int) -> T:
    """`suspend_flow_run(wait_for_input=form, key=key, timeout=timeout)` with quiet heartbeats."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise RuntimeError("suspend runs inside a flow run")
    run_id = context.flow_run.id
    with get_client(sync_client=True) as client:
        passed = key in (client.read_flow_run(run_id).empirical_policy.pause_keys or set())
    if not passed:
        if not stop_heartbeats(run_id):
            get_run_logger().warning("the run's heartbeat thread was not found or did not stop")
        EventsWorker.drain_all(timeout=_DELIVER_SECONDS, at_exit=False)  # the last beats first
    return suspend_flow_run(wait_for_input=form, key=key, timeout=timeout)


def stop_heartbeats(run_id: Any) -> bool:
    """Stop the heartbeat thread Prefect's engine runs for `run_id` and wait for it to end.

    Prefect 3.8 (pinned in constraints.txt) starts it in `flow_engine._send_heartbeats` as a
    thread running `heartbeat_loop`, whose closure holds the engine and a `stop_event` it checks
    every second; no public API stops it. False when no such thread is found (heartbeats off).
    """
    for thread in threading.enumerate():
        loop = next(iter(getattr(thread, "_args", ()) or ()), None)
        if loop is None or getattr(loop, "__name__", None) != "heartbeat_loop":
            continue
        cells = dict(zip(loop.__code__.co_freevars, loop.__closure__ or (), strict=True))
        engine, stop = cells.get("engine"), cells.get("stop_event")
        if engine is None or stop is None:
            continue
        flow_run = getattr(engine.cell_contents, "flow_run", None)
        if getattr(flow_run, "id", None) != run_id:
            continue
        stop.cell_contents.set()
        thread.join(timeout=5)  # it sleeps in steps of one second, checking the event
        return not thread.is_alive()
    return False
