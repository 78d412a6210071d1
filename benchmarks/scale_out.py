"""A nightly of four drops on one worker, then on two: the scaling ratio, the per-drop overhead.

    python benchmarks/scale_out.py                       # 4 drops of 1M rows; 1 then 2 workers
    python benchmarks/scale_out.py --rows 200000 --workers 1 2 3

What users run, end to end: for each worker count, a fresh project (the repo's configs, its own
state/ and keys), a Prefect server of its own, `deploy/setup.sh` (the work pool and the
deployments of deploy/prefect.yaml, as an operator does), that many `bourse worker --limit 1`
processes (a worker stands for a machine that runs one drop at a time), and then `bourse nightly
--wait 0` through the real CLI: it starts each drop as a `process-drop/drop` run on whichever
worker is free. Seconds are the nightly's wall time; the drops are `my-buildops/sensor_readings`
files of benchmarks/pipeline.py (each with its own seed: other bytes, so four new drops).

Per drop, from Prefect's own records of the runs: the drop run's wall time (start to end of the
`process-drop` run), its domain work (the summed durations of the task runs inside it, that is
ingest, quality, PII, build and packaging bodies) and the difference, the orchestration overhead
(flow and subflow runs, task-run bookkeeping, result persistence, the start of the process). A
tiny drop (100 rows) shows the fixed part of that overhead. The ratio printed is
time(1 worker) / time(N workers); on this 2-core machine two workers can give at most ~2x
(issue 23 expects up to ~1.8x), and the nightly, the server and the publish runs share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # make_project, free_port: no effects on import
sys.path.insert(0, str(REPO / "benchmarks"))
BIN = Path(sys.executable).parent
PROVIDER, DATASET = "my-buildops", "sensor_readings"
POOL = "databourse"
SLOWEST = 0  # --slowest N: each drop's N slowest task runs, on stderr
PREFECT_DB: str | None = None  # --prefect-db URL: the Prefect server's PostgreSQL (admin URL)


@dataclass
class Stack:
    """One round's project, Prefect server and workers."""

    root: Path
    project: Path
    api: str
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)
        if PREFECT_DB:
            import psycopg

            with psycopg.connect(PREFECT_DB, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.root.name.replace("-", "_")}"')


def fresh_database(name: str) -> str:
    """A new, empty PostgreSQL database for one round's Prefect server (asyncpg URL)."""
    import psycopg

    assert PREFECT_DB is not None
    db = name.replace("-", "_")
    with psycopg.connect(PREFECT_DB, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    base = PREFECT_DB.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{db}"


def post(api: str, path: str, body: dict[str, Any]) -> Any:
    resp = httpx.post(f"{api}{path}", json=body, timeout=60)
    resp.raise_for_status()
    return resp.json()


def wait_for(check: Any, what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while not check():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def start_stack(workers: int, drops: list[Path], rows: int) -> Stack:
    from helpers import free_port, make_project

    from databourse.storage import zones

    root = Path(tempfile.mkdtemp(prefix="databourse-scale-"))
    project = make_project(root / "project")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(root / "prefect-client"),
        "DATABOURSE_CONFIG_DIR": str(project / "configs"),
        "DATABOURSE_HOME": str(REPO),
        "DATABOURSE_KEY_DIR": str(root / "keys"),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONUNBUFFERED": "1",
    }
    stack = Stack(root, project, api, env)
    server_env = {**env, "PREFECT_HOME": str(root / "prefect-server"), "PREFECT_UI_ENABLED": "0"}
    if PREFECT_DB:
        server_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = fresh_database(root.name)
    log = root / "server.log"
    with log.open("wb") as fh:
        server = subprocess.Popen(
            [BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=server_env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    stack.procs.append(server)

    def healthy() -> bool:
        try:
            return httpx.get(f"{api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, "the Prefect server", server, log)
    run = [sys.executable, "-m", "bourse"]
    subprocess.run([*run, "secrets", "init"], cwd=project, env=env, check=True, capture_output=True)
    subprocess.run(["sh", str(REPO / "deploy" / "setup.sh")], env=env, check=True,
                   capture_output=True)  # fmt: skip
    for i in range(workers):
        wlog = root / f"worker-{i}.log"
        with wlog.open("wb") as fh:
            proc = subprocess.Popen(
                [*run, "worker", "--pool", POOL, "--limit", "1", "--name", f"worker-{i}"],
                cwd=project, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        stack.procs.append(proc)
        wait_for(lambda w=wlog: "started!" in w.read_text(errors="replace"), "a worker", proc, wlog)
    landing = project / "state" / "store" / zones.landing_prefix(PROVIDER) / DATASET
    for day, drop in enumerate(drops, start=1):
        target = landing / f"2026-12-{day:02d}" / f"readings-{rows}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(drop, target)  # a hard link would be refused (a provider trick)
    return stack


def nightly(stack: Stack) -> tuple[float, dict[str, Any]]:
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bourse", "nightly", "--wait", "0", "--json"],
        cwd=stack.project, env=stack.env, capture_output=True, text=True, timeout=7200,
    )  # fmt: skip
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"the nightly failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds, json.loads(done.stdout[done.stdout.index("{") :])


def _span(run: dict[str, Any]) -> tuple[float, float] | None:
    if not (run.get("start_time") and run.get("end_time")):
        return None
    return (
        datetime.fromisoformat(run["start_time"]).timestamp(),
        datetime.fromisoformat(run["end_time"]).timestamp(),
    )


def _covered(spans: list[tuple[float, float]]) -> float:
    """Seconds during which at least one of `spans` ran (concurrent tasks counted once)."""
    total, reach = 0.0, float("-inf")
    for lo, hi in sorted(spans):
        if hi > reach:
            total += hi - max(lo, reach)
            reach = hi
    return total


def drop_costs(api: str, run_id: str) -> tuple[float, float, int, int]:
    """Of one drop run: its wall and domain seconds (its own span, the time its task runs ran),
    and how many flow runs (it and its subflows) and task runs it made."""
    tree, frontier = {run_id}, [run_id]
    subflow_parents: set[str] = set()
    while frontier:  # the subflow runs below it (ingest, validate, build)
        tasks = post(api, "/task_runs/filter", {"task_runs": {"flow_run_id": {"any_": frontier}}})
        below = post(
            api, "/flow_runs/filter",
            {"flow_runs": {"parent_task_run_id": {"any_": [t["id"] for t in tasks]}}},
        ) if tasks else []  # fmt: skip
        subflow_parents |= {r["parent_task_run_id"] for r in below}
        frontier = [r["id"] for r in below if r["id"] not in tree]
        tree.update(frontier)
    tasks = post(api, "/task_runs/filter", {"task_runs": {"flow_run_id": {"any_": list(tree)}}})
    leaves = [t for t in tasks if t["id"] not in subflow_parents and _span(t)]
    top = _span(httpx.get(f"{api}/flow_runs/{run_id}", timeout=60).json()) or (0.0, 0.0)
    if SLOWEST:
        for t in sorted(leaves, key=lambda t: -(t["total_run_time"] or 0))[:SLOWEST]:
            print(f"  {run_id[:8]} {t['name']}: {t['total_run_time']:.1f} s", file=sys.stderr)
    spans = [s for t in leaves if (s := _span(t))]
    return top[1] - top[0], _covered(spans), len(tree), len(tasks)


def timeline(api: str, began: float) -> None:
    """Every deployment run (drops, publications) by start: offsets from the nightly's start."""
    runs = post(api, "/flow_runs/filter", {"flow_runs": {"parent_task_run_id": {"is_null_": True}}})
    runs += post(api, "/flow_runs/filter", {"flow_runs": {"tags": {"all_": ["nightly-drop"]}}})
    seen: set[str] = set()
    for run in sorted(runs, key=lambda r: r.get("start_time") or "9"):
        if run["id"] in seen or not run.get("deployment_id"):
            continue
        seen.add(run["id"])
        span = _span(run)
        created = datetime.fromisoformat(run["created"]).timestamp() - began
        start, end = (span[0] - began, span[1] - began) if span else (float("nan"),) * 2
        worker = next((t for t in run["tags"] if t.startswith("worker:")), "")
        name = run["name"][:40]
        print(f"  created {created:6.1f}  start {start:6.1f}  end {end:6.1f}  "
              f"{run['state_name']:<10} {name:<40} {worker}", file=sys.stderr)  # fmt: skip


def round_of(workers: int, drops: list[Path], rows: int) -> dict[str, Any]:
    stack = start_stack(workers, drops, rows)
    try:
        began = time.time()
        seconds, result = nightly(stack)
        if SLOWEST:
            timeline(stack.api, began)
        if len(result["processed"]) != len(drops):
            raise SystemExit(f"the nightly processed {len(result['processed'])} drop(s), not "
                             f"{len(drops)}: {result['summary']}")  # fmt: skip
        costs = [drop_costs(stack.api, o["run_id"]) for o in result["processed"]]
        on = sorted({o["worker"] for o in result["processed"]})
        store = stack.project / "state" / "store"
        written = sum(1 for p in store.rglob("*") if p.is_file() and "landing" not in p.parts)
        failed = result["failed"]
    finally:
        stack.stop()
    return {
        "workers": workers, "seconds": seconds, "costs": costs, "ran_on": on, "failed": failed,
        "objects_per_drop": written / len(drops),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per drop")
    parser.add_argument("--drops", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tiny", type=int, default=100, help="rows of the overhead drop; 0: none")
    parser.add_argument(
        "--prefect-db", help="Prefect's database: a PostgreSQL admin URL (default: its SQLite)"
    )
    parser.add_argument("--slowest", type=int, default=0, help="print each drop's N slowest tasks")
    args = parser.parse_args()
    global SLOWEST, PREFECT_DB
    SLOWEST, PREFECT_DB = args.slowest, args.prefect_db
    from pipeline import write_csv
    from real_run import generate

    work = Path(tempfile.mkdtemp(prefix="databourse-scale-drops-"))
    try:
        drops = []
        for i in range(args.drops):
            path = work / f"drop-{i}.csv"
            write_csv(path, args.rows, seed=100 + i)
            drops.append(path)
        size_mb = sum(p.stat().st_size for p in drops) / 1e6
        print(f"{args.drops} drops of {args.rows:,} rows ({size_mb:.0f} MB in all), "
              f"on {os.cpu_count()} CPUs")  # fmt: skip
        rounds = [round_of(n, drops, args.rows) for n in args.workers]
        tiny = None
        if args.tiny:
            path = work / "tiny.csv"
            generate(path, args.tiny)
            tiny = round_of(1, [path], args.tiny)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = rounds[0]["seconds"]
    print("\n| workers | nightly s | ratio vs 1 | drop wall s (median) | domain s | overhead s "
          "| ran on | failed |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in rounds:
        walls = [c[0] for c in r["costs"]]
        domains = [c[1] for c in r["costs"]]
        print(
            f"| {r['workers']} | {r['seconds']:.1f} | x{base / r['seconds']:.2f} | "
            f"{statistics.median(walls):.1f} | {statistics.median(domains):.1f} | "
            f"{statistics.median(w - d for w, d in zip(walls, domains, strict=True)):.1f} | "
            f"{', '.join(r['ran_on'])} | {r['failed']} |"
        )
    costs = [c for r in rounds for c in r["costs"]]
    print(f"\nper drop: {statistics.median(c[2] for c in costs):.0f} flow runs, "
          f"{statistics.median(c[3] for c in costs):.0f} task runs, "
          f"{rounds[0]['objects_per_drop']:.0f} objects in the store (not landing/)")  # fmt: skip
    if tiny:
        [(wall, domain, _, _)] = tiny["costs"]
        print(f"\ntiny drop ({args.tiny} rows): nightly {tiny['seconds']:.1f} s, drop run "
              f"{wall:.1f} s, domain work {domain:.2f} s, "
              f"orchestration {wall - domain:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
