"""Prefect automations an operator relies on, created or updated idempotently by name.

    databourse: a run failed              any flow run Failed or Crashed
    databourse: an approval is waiting    a publish run Suspended with no change for N hours
    databourse: product quality dropped   the `databourse.product.quality-dropped` event, which
                                          packaging emits when a version's overall score falls
                                          below the previous version's
    databourse: a run stopped beating     a running flow run whose heartbeats stopped (its
                                          process died: runner killed, machine lost) is marked
                                          Crashed; created on every `bourse server start`

Each notifies through a Prefect notification block when one is named (`--notify BLOCK`, e.g. a
Slack or email block the operator created in the UI); without one the automation still fires and
shows in the UI's event feed and on the automation's page (action "do nothing").
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from prefect.automations import (
    Automation,
    ChangeFlowRunState,
    DoNothing,
    EventTrigger,
    Posture,
    SendNotification,
)
from prefect.blocks.core import Block
from prefect.client.schemas.objects import StateType

from bourse.runtime import HEARTBEAT_SECONDS

PREFIX = "databourse: "
QUALITY_DROPPED = "databourse.product.quality-dropped"
_RUN_ENDS = {
    "prefect.flow-run.Running",
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Crashed",
    "prefect.flow-run.Scheduled",
    "prefect.flow-run.Pending",
}


def wanted(approval_wait: timedelta, notify: str | None) -> list[Automation]:
    """The automations this project needs, with their triggers and actions."""
    failed = EventTrigger(
        match={"prefect.resource.id": "prefect.flow-run.*"},
        expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
        for_each={"prefect.resource.id"},
        posture=Posture.Reactive,
        threshold=1,
        within=timedelta(0),
    )
    waiting = EventTrigger(
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related={"prefect.resource.role": "flow", "prefect.resource.name": "publish-product"},
        after={"prefect.flow-run.Suspended"},
        expect=_RUN_ENDS,
        for_each={"prefect.resource.id"},
        posture=Posture.Proactive,
        threshold=1,
        within=approval_wait,
    )
    dropped = EventTrigger(
        match={"prefect.resource.id": "databourse.product.*"},
        expect={QUALITY_DROPPED},
        for_each={"prefect.resource.id"},
        posture=Posture.Reactive,
        threshold=1,
        within=timedelta(0),
    )
    return [
        _automation(
            "a run failed", failed, notify, "{{ flow_run.name }} ended {{ flow_run.state.name }}"
        ),
        _automation(
            "an approval is waiting",
            waiting,
            notify,
            "{{ flow_run.name }} has waited for approval longer than expected",
        ),
        _automation(
            "product quality dropped",
            dropped,
            notify,
            "{{ event.resource.name }}: quality dropped ({{ event.payload }})",
        ),
        zombie(),
    ]


ZOMBIE = f"{PREFIX}a run stopped beating"
_BEATS_END = {
    "prefect.flow-run.heartbeat",
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Crashed",
    "prefect.flow-run.Paused",
    "prefect.flow-run.Suspended",
}


def zombie(missed: int = 3) -> Automation:
    """Prefect's zombie detection: no heartbeat for `missed` beats marks the run Crashed.

    The trigger cannot see a run's state: a heartbeat received after the run's Suspended event
    opens a window that nothing closes, and the suspended run is crashed. So a run suspends only
    through `flows.suspending.suspend`, which stops its heartbeats and delivers them first.
    """
    silent = EventTrigger(
        match={"prefect.resource.id": "prefect.flow-run.*"},
        after={"prefect.flow-run.heartbeat"},
        expect=_BEATS_END,
        for_each={"prefect.resource.id"},
        posture=Posture.Proactive,
        threshold=1,
        within=timedelta(seconds=missed * HEARTBEAT_SECONDS),
    )
    crash = ChangeFlowRunState(
        state=StateType.CRASHED,
        name="Crashed",
        message=f"no heartbeat for {missed * HEARTBEAT_SECONDS} s: its process is gone "
        "(bourse approvals sweep lists publish runs stopped after an answer)",
    )
    return Automation(
        name=ZOMBIE,
        description="Created by `bourse server start`: a running flow run stopped beating.",
        trigger=silent,
        actions=[crash],
    )


def ensure_zombie() -> str | None:
    """Create the zombie automation when missing; return what was done."""
    try:
        cast(Automation, Automation.read(name=ZOMBIE))  # sync call
        return None
    except ValueError:
        zombie().create()
        return f"created automation {ZOMBIE!r}"


def _automation(title: str, trigger: EventTrigger, notify: str | None, body: str) -> Automation:
    action: Any = DoNothing()
    if notify is not None:
        block = cast(Block, Block.load(notify))  # sync call; fails naming a missing block
        action = SendNotification(
            block_document_id=block._block_document_id,
            subject=f"{PREFIX}{title}",
            body=body,
        )
    return Automation(
        name=f"{PREFIX}{title}",
        description=f"Created by `bourse automations setup`: {title}.",
        trigger=trigger,
        actions=[action],
    )


def ensure(approval_wait: timedelta, notify: str | None = None) -> list[str]:
    """Create each automation, or update the one of the same name; return what was done."""
    done = []
    for automation in wanted(approval_wait, notify):
        try:
            existing = cast(Automation, Automation.read(name=automation.name))  # sync call
        except ValueError:
            existing = None
        if existing is None:
            automation.create()
            done.append(f"created automation {automation.name!r}")
        else:
            automation.id = existing.id
            automation.update()
            done.append(f"updated automation {automation.name!r}")
    return done
