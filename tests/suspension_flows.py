"""Flows for the zombie-automation test (test_conditions_and_zombies), served by a runner.

`suspends-twice` suspends on two forms the way a publish run with two gated markets does: the
second suspension comes a second or two after the resumed process starts. `dies-running` is a
real zombie: it kills its runner and itself while Running, so only the automation can end it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from prefect import flow
from prefect.runner import Runner

from flows.suspending import suspend


@flow(name="suspends-twice", persist_result=True)
def suspends_twice() -> str:
    first = suspend(str, "market-1", 3600)
    second = suspend(str, "market-2", 3600)
    return first + second


@flow(name="dies-running")
def dies_running() -> None:
    time.sleep(5)  # its first heartbeat reaches the server
    os.kill(os.getppid(), signal.SIGKILL)  # the runner: nobody will report this run
    os.kill(os.getpid(), signal.SIGKILL)


def serve() -> None:
    runner = Runner(name="suspension-test")
    runner.add_flow(suspends_twice, name="test")
    runner.add_flow(dies_running, name="test")
    asyncio.run(runner.start())


if __name__ == "__main__":
    serve()
