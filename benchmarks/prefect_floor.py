"""Prefect's own floor under `bourse run`: the same flow runs, task runs and deployment run, empty.

    python benchmarks/prefect_floor.py               # 5 pairs
    python benchmarks/prefect_floor.py --repeat 3

Issue 18 asks for a 100-row drop end to end in under 5 s. This measures what no change inside
databourse can remove while a drop keeps its shape, on the same stack, pair by pair:
  floor  a fresh process that imports Prefect and runs a parent flow holding a slot of a global
         concurrency limit, the drop's subflows with their task runs (ingest 2, validate 2 at
         once, build 1 around anonymize 8, as `bourse run`'s timeline shows them), then a task
         that starts a deployment run of an empty 6-task flow and waits for it (read every 0.25 s,
         as `request-publication` does), and a markdown artifact; every body does nothing
  run    `bourse run` on 100 rows (benchmarks/real_run.py's drop), through the real CLI
Both in one fresh project (real_run's: its own Prefect server, port, keys and state), whose
`bourse server start` has started the server and runner; the floor's deployment is served by a
second Runner with the project's settings (poll every 1 s, heartbeats). Seconds are each process's
wall time from its start to its exit; medians of the pairs, and run - floor pair by pair (what
databourse's work and its own calls add).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
LIMIT = "floor-provider"


def floor_flows() -> tuple[object, object]:
    """The drop's shape with empty bodies: (the parent flow, the served publish flow)."""
    from prefect import flow, task
    from prefect.artifacts import create_markdown_artifact
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency
    from prefect.deployments import run_deployment

    @task
    def step(i: int) -> int:
        return i

    @flow(name="floor-publish")
    def publish() -> None:
        for i in range(6):
            step(i)

    @flow(name="floor-ingest")
    def ingest() -> None:
        step(0), step(1)

    @flow(name="floor-validate")
    def validate() -> None:
        for future in [step.submit(0), step.submit(1)]:
            future.result()

    @flow(name="floor-anonymize")
    def anonymize() -> None:
        for i in range(8):
            step(i)

    @flow(name="floor-build")
    def build() -> None:
        anonymize()
        step(0)

    @task
    def request_publication() -> str:
        run = run_deployment("floor-publish/floor", timeout=0)
        with get_client(sync_client=True) as client:
            while True:
                state = client.read_flow_run(run.id).state
                if state is not None and state.is_final():
                    return str(state.name)
                time.sleep(0.25)

    @flow(name="floor-drop")
    def drop() -> str:
        with concurrency(LIMIT, occupy=1, strict=True):
            ingest(), validate(), build()
        state = request_publication()
        create_markdown_artifact("| a | b |\n|---|---|\n| 1 | 2 |\n", key="floor-drop")
        return state

    return drop, publish


def serve() -> None:
    """The floor's Runner: serves `floor-publish/floor` from the imported flow, as bourse does."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.runner import Runner

    with get_client(sync_client=True) as client:
        try:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=LIMIT, limit=5)
            )
        except Exception:  # already there (a second serve in the same project)
            pass
    _, publish = floor_flows()
    runner = Runner(pause_on_shutdown=False)
    runner.add_flow(publish, name="floor")  # type: ignore[arg-type]
    asyncio.run(runner.start())


def floor_env(project: object) -> dict[str, str]:
    """The project's environment with what bourse's runtime sets for its own processes."""
    from bourse.runtime import HEARTBEAT_SECONDS

    env = dict(project.env)  # type: ignore[attr-defined]
    env.update(
        PREFECT_API_URL=project.api,  # type: ignore[attr-defined]
        PREFECT_HOME=str(project.root / "state" / "prefect"),  # type: ignore[attr-defined]
        PREFECT_RUNNER_POLL_FREQUENCY="1",
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY=str(HEARTBEAT_SECONDS),
        PREFECT_RESULTS_PERSIST_BY_DEFAULT="true",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    return env


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise SystemExit(f"{argv} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="pairs (median)")
    parser.add_argument("--keep", help="keep the project in this folder (its server log)")
    parser.add_argument(
        "--prefect-db", metavar="ADMIN_URL",
        help="the Prefect server on a new PostgreSQL database made through this admin URL "
        "(e.g. postgresql://postgres@127.0.0.1:5432/postgres) instead of its SQLite file",
    )  # fmt: skip
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--drop", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve()
    if args.drop:
        drop, _ = floor_flows()
        state = drop()  # type: ignore[operator]
        print(state)
        if state != "Completed":
            raise SystemExit(f"the floor's publish run ended {state}")
        return None

    from real_run import Project, generate

    if args.prefect_db:  # the project's server inherits it (tests/helpers.cli_env)
        os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = _fresh_database(args.prefect_db)
    where = "PostgreSQL" if args.prefect_db else "SQLite"
    print(f"machine: {os.cpu_count()} cores; the same fresh project for both, pair by pair; "
          f"Prefect's database: {where}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        work = Path(args.keep or tmp)
        project = Project(work, "floor")
        project.start_stack()
        env = floor_env(project)
        runner = subprocess.Popen(
            [sys.executable, __file__, "--serve"], env=env, cwd=project.root,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(8)  # the Runner registers its deployment
            timed([sys.executable, __file__, "--drop"], env, project.root)  # warm-up, untimed
            pairs = []
            for i in range(args.repeat):
                source = work / f"drop-{i}.csv"
                generate(source, 100)
                _vary(source, i)
                floor = timed([sys.executable, __file__, "--drop"], env, project.root)
                run = timed(
                    [sys.executable, "-m", "bourse", "run", "my-buildops", "sensor_readings",
                     str(source)], project.env, project.root,
                )  # fmt: skip
                pairs.append((floor, run))
                print(f"  pair {i + 1}: floor {floor:.2f} s, bourse run {run:.2f} s", flush=True)
                print(f"    ended {time.strftime('%H:%M:%S')}", flush=True)
        finally:
            runner.terminate()
            runner.wait(timeout=30)
            project.stop()
    med = statistics.median
    floor_s, run_s = med(p[0] for p in pairs), med(p[1] for p in pairs)
    added = med(r - f for f, r in pairs)
    print("| 100-row drop, warm stack | seconds (median) |")
    print("|---|---|")
    print(f"| Prefect's floor (same runs, empty bodies) | {floor_s:.2f} |")
    print(f"| `bourse run` | {run_s:.2f} |")
    print(f"| added by databourse (pair by pair) | {added:.2f} |")
    verdict = "reachable" if floor_s < 5 else "below Prefect's floor on this stack"
    print(f"target < 5 s end to end: {verdict}")


def _fresh_database(admin_url: str) -> str:
    """A new, empty PostgreSQL database for the project's Prefect server (asyncpg URL)."""
    import psycopg

    name = f"floor_{os.getpid()}_{int(time.time())}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


def _vary(path: Path, seed: int) -> None:
    """Each pair's drop is new content (a new version), so every run publishes."""
    lines = path.read_text().splitlines()
    head, rows = lines[0], lines[1:]
    col = head.split(",").index("temperature_c")
    out = [head]
    for n, line in enumerate(rows):
        cells = line.split(",")
        cells[col] = f"{float(cells[col]) + (0.1 if (n + seed) % 2 else -0.1) * (seed + 1):.1f}"
        out.append(",".join(cells))
    path.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
