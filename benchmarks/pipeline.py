"""The whole governed pipeline against the bare cost of converting the same file, in one run.

    python benchmarks/pipeline.py                               # 1M, 5M and 20M rows
    python benchmarks/pipeline.py --rows 1000000 5000000
    python benchmarks/pipeline.py --rows 1000000 --stages anonymize --keep
    python benchmarks/pipeline.py --rows 1000000 --profile quality anonymize

For each size it writes (untimed, in blocks, deterministic) a `my-buildops/sensor_readings` CSV
with occupants drawn from `databourse_samples.demo` (Malaysian names, valid MyKad numbers and mobile
numbers), then runs the baseline in a process of its own and the stages one after the other in
another, as a process worker runs a flow run's tasks (`--process per-stage`: each stage in a
fresh process). Each stage's peak RSS is its own (VmHWM is reset before it):
  bare       pyarrow.csv.read_csv + pyarrow.parquet.write_table (zstd): the floor
  ingest     the ingest-file task's step                quality   the check-quality task's
  pii        the scan-personal-data task's              anonymize the build's passes, plan to finish
  package    the package-version task's                 publish   decide-transfers + export-catalog
Each stage calls the steps its tasks call (`databourse.steps`), with the tasks' arguments and
their checks of staged and work files (`tasks.staged`, `tasks.work_files`), so it measures the
code that runs, minus Prefect: no artifacts, progress, logs or approval form. The steps get a
`Resources` of an embedded store (LocalStore, SQLite catalog with the run's own audit key, in a
temp folder), the repo's configs and product `kl-building-environment`; the staged-file checks
read that catalog (`trusted_staged`, `ingested_copy` here), not tasks.resources'. The partition
passes of `anonymize` run on `runs.threads()` threads, as the flow's task runner maps them.
Stages pass pointers (ingest id, content hash, version) through `state.json`.
The process_drop flow runs quality and PII concurrently; here they run one after the other.
Seconds exclude imports and config loading (a worker pays them once); CPU s counts all threads
(steadier than wall time on a busy machine); peak RSS is the process's VmHWM, imports included;
Arrow MiB is the Arrow memory pool's peak ("<=": not above an earlier stage's, which the pool
cannot forget). A stage past --max-rss-mb is killed and reported.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import json
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PROVIDER, DATASET, PRODUCT = "my-buildops", "sensor_readings", "kl-building-environment"
KEY = b"benchmark-pseudonym-key-0123456789abcdef"  # fixed: same input, same content hash
AUDIT_KEY = b"Jq7mZ2xR9vK4tW8nL3cY6bH1sD5fG0aP"  # authenticates the run's audit events
STAGES = ("ingest", "quality", "pii", "anonymize", "package", "publish")
NEEDS = {"quality": ["ingest"], "pii": ["ingest"], "anonymize": ["ingest"],
         "package": ["quality", "pii", "anonymize"], "publish": ["package"]}  # fmt: skip
IMPORTS = (
    "pyarrow.parquet",
    "databourse.catalog.database",
    "databourse.config",
    "databourse.storage.store",
    "databourse.ingest.records",  # load_ingest, in every stage
    "databourse.steps.resources",
    "tasks.staged",  # staged_copy (no Prefect)
)
STAGE_IMPORTS = {
    "ingest": (
        "databourse.steps.ingesting",
        "tasks.ingesting",  # source_bounds: Prefect is imported here, as in a worker
        "prefect.runtime.deployment",  # source_bounds asks whether a deployment started the run
        "databourse.ingest.files",
        "databourse.ingest.staging",
        "databourse.ingest.quarantine",
    ),
    "quality": (
        "databourse.steps.validating",
        "databourse.quality.suite",
        "databourse.quality.batches",
        "databourse.quality.docs",
        "databourse.quality.history",
        "databourse.quality.page",
        "databourse.quality.score",
    ),
    "pii": ("databourse.steps.validating", "databourse.pii.detect", "databourse.pii.screening"),
    "anonymize": (
        "databourse.steps.building",
        "databourse.steps.assembling",
        "tasks.building",  # planned_files (Prefect is imported with it, as in a worker)
        "tasks.work_files",
        "databourse.product.productize",
        "databourse.product.assembly",
        "databourse.product.partitions",
        "databourse.product.package",
        "databourse.privacy.hierarchy",
        "pyarrow.dataset",  # read_table of a folder (verify_written) imports it
    ),
    "package": (
        "databourse.steps.packaging",
        "databourse.product.package",
        "databourse.transfer.odrl",
        "jsonschema",
    ),
    "publish": (
        "databourse.steps.publishing",
        "databourse.standards.exports",
        "databourse.transfer.policy",
    ),
}
TIME_TARGET, RSS_TARGET_MIB = 3.0, 1536.0


# ---------------------------------------------------------------- the provider file
def write_csv(path: Path, rows: int, seed: int = 7) -> None:
    """Hourly readings over 2026, sorted by time; occupants badged in during office hours."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from databourse_samples.demo_sensors import SENSOR_COLUMNS, SITES, sensor_rows

    sample = sensor_rows(random.Random(seed), 20.0, n_rows=20_000)  # ~6000 occupants
    people = list(dict.fromkeys((r[7], r[8], r[9]) for r in sample if r[7]))
    names, mykads, phones = (pa.array([p[i] for p in people]) for i in range(3))
    rng = np.random.default_rng(seed)
    base = rng.uniform(22.5, 25.0, (len(SITES), 6))
    sites = pa.array(SITES)
    with path.open("wb") as fh:
        fh.write((",".join(SENSOR_COLUMNS) + "\n").encode())
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        writer: Any = None
        for lo in range(0, rows, 500_000):
            i = np.arange(lo, min(rows, lo + 500_000))
            hour = i * (365 * 24) // rows
            office = (hour % 24 >= 8) & (hour % 24 < 19)
            site, floor = rng.integers(0, len(SITES), len(i)), rng.integers(1, 7, len(i))
            present = office & (rng.random(len(i)) > 0.06)
            who = pa.array(rng.integers(0, len(people), len(i)), mask=~present)
            temp = base[site, floor - 1] + np.where(office, 1.2, -0.8) + 0.8 * present
            humid = 58.0 + rng.normal(0, 6.0, len(i)) - 4.0 * office
            co2 = (
                450
                + present * rng.integers(150, 651, len(i))
                + office * rng.integers(0, 201, len(i))
            )
            block = pa.table(
                {
                    "reading_id": pc.binary_join_element_wise(
                        "R", pc.utf8_lpad(pc.cast(pa.array(i + 1), pa.string()), 9, "0"), ""
                    ),
                    "site_id": sites.take(pa.array(site)),
                    "floor": floor,
                    "reading_time": pc.strftime(
                        pa.array(np.datetime64("2026-01-01T00", "s") + hour * 3600),
                        "%Y-%m-%dT%H:%M:%S",
                    ),
                    "temperature_c": np.round(
                        np.clip(temp + rng.normal(0, 0.7, len(i)), 20, 30), 1
                    ),
                    "humidity_pct": np.round(np.clip(humid, 35, 85), 1),
                    "co2_ppm": np.clip(co2 + np.round(rng.normal(0, 25, len(i))), 400, 1500).astype(
                        np.int64
                    ),
                    "occupant_name": names.take(who),
                    "occupant_mykad": mykads.take(who),
                    "occupant_phone": phones.take(who),
                }
            )
            writer = writer or pacsv.CSVWriter(fh, block.schema, write_options=options)
            writer.write_table(block)
        if writer is not None:
            writer.close()


# ---------------------------------------------------------------- one stage, in a child
def _status_mib(name: str, pid: int | str = "self") -> float:
    """A VmRSS/VmHWM figure of /proc/<pid>/status in MiB (0 when the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next((x for x in text.splitlines() if x.startswith(f"{name}:")), f"{name}: 0 kB")
    return int(line.split()[1]) / 1024


@dataclass
class Stage:
    """What a stage function gets: the resources the steps take, the run's state, and a probe."""

    res: Any  # databourse.steps.resources.Resources (None for the baseline)
    state: dict[str, Any]
    start: float = field(default_factory=time.perf_counter)
    cpu: float = field(default_factory=time.process_time)  # all threads: stable under load
    marks: list[dict[str, Any]] = field(default_factory=list)

    def mark(self, label: str) -> None:
        """Record time, RSS, peak RSS and Arrow allocation after a step of the stage."""
        import pyarrow as pa

        self.marks.append(
            {
                "step": label,
                "s": round(time.perf_counter() - self.start, 2),
                "rss": round(_status_mib("VmRSS")),
                "hwm": round(_status_mib("VmHWM")),
                "arrow": round(pa.total_allocated_bytes() / 2**20),
            }
        )


# The tasks' staged-file checks on this run's resources: tasks.staged's trusted_staged and
# ingested_copy read tasks.resources' catalog, whose audit key this run does not have.
def trusted_staged(res: Any, record: Any) -> dict[str, Any]:
    """tasks.staged.trusted_staged on `res`: the staged file's sha256 and size, once
    `_ingest.json` agrees with the audit trail (a refusal is raised, not audited)."""
    from databourse.ingest.staged_integrity import expected_staged
    from databourse.storage import zones

    key = f"{zones.raw_prefix(record.provider, record.dataset, record.ingest_id)}/_ingest.json"
    events = res.catalog.audit_authenticated("ingest")
    return dict(expected_staged(record, events, res.store.uri(key)))


def ingested_copy(res: Any, record: Any) -> AbstractContextManager[Path]:
    """tasks.staged.ingested_copy on `res`: the staged Parquet, checked against the trail."""
    from tasks.staged import staged_copy

    return staged_copy(res.store, record.staged_key, trusted_staged(res, record))


def stage_ingest(s: Stage) -> dict[str, Any]:
    """The ingest-file task: steps.ingesting.ingest_source (raw copy, conversion, audit)."""
    from databourse.steps.ingesting import ingest_source
    from tasks.ingesting import source_bounds

    result = ingest_source(
        s.res, PROVIDER, DATASET, s.state["source"], source_bounds(PROVIDER, DATASET),
        progress_of=lambda name: lambda rows, share: None,  # no progress artifact
    )  # fmt: skip
    return {"ingest_id": result.ingest_id, "ingested_rows": result.rows}


def stage_quality(s: Stage) -> dict[str, Any]:
    """The check-quality task: steps.validating.check_quality (suite, quality.json and .html)."""
    from databourse.steps.validating import check_quality

    checked = check_quality(
        s.res, PROVIDER, DATASET, s.state["ingest_id"], partial(ingested_copy, s.res),
        show=lambda shown: s.mark("validate, reports"),
    )  # fmt: skip
    return {"quality": checked.report.summary()}


def stage_pii(s: Stage) -> dict[str, Any]:
    """The scan-personal-data task: steps.validating.scan_personal_data (every column)."""
    from databourse.steps.validating import scan_personal_data

    ingest_id = s.state["ingest_id"]
    scanned = scan_personal_data(s.res, PROVIDER, DATASET, ingest_id, partial(ingested_copy, s.res))
    return {"pii_not_found": [m["column"] for m in scanned.check.not_found]}


def stage_anonymize(s: Stage) -> dict[str, Any]:
    """flows/build_product.anonymize_product's tasks in one process: plan, count, decide,
    write, lay out, write files, finish, drop the work folder; each pass reads its work files
    through tasks.work_files, checked against their seals, as its task does."""
    from databourse.ingest.records import load_ingest
    from databourse.privacy.pseudonyms import needs_key
    from databourse.steps import building
    from tasks.building import planned_files
    from tasks.work_files import remove_work_folder

    res, product = s.res, s.res.config.product(PRODUCT)
    build = building.open_build(res.config, res.store, PRODUCT, KEY if needs_key(product) else None)
    record = load_ingest(res.store, product.source.provider, product.source.dataset,
                         s.state["ingest_id"])  # fmt: skip
    rows = building.partition_rows(res.config)
    work = building.work_prefix(PRODUCT, record.ingest_id)
    trusted = trusted_staged(res, record)
    try:
        with planned_files(res.store, work, record, trusted) as (path, folder, seals):
            uri = None if seals else res.store.uri(record.staged_key)  # S3: checked in the plan
            plan = building.plan_build(build, record, trusted, work, path, folder, seals, rows, uri)
        s.mark(f"plan x{len(plan.partitions)}")
        # The flow maps these passes on its task runner: threads, `runs.threads()` at once.
        with ThreadPoolExecutor(max_workers=res.config.settings.runs.threads()) as pool:
            passes = _Passes(build, res.catalog, plan, pool)
            counted = passes.count() if plan.counts else []
            s.mark(f"count x{len(plan.partitions) if plan.counts else 0}")
            decided = passes.decide(counted)
            s.mark("decide")
            written = passes.write(decided)
            s.mark("write segments")
            layout = passes.lay_out(decided, written)
            files = passes.write_files(decided, layout)
            s.mark("write files")
            anonymized = passes.finish(decided, layout, files)
        s.mark("verify (finish)")
    finally:
        remove_work_folder(res.store, work)
    return {"anonymized": anonymized.to_json()}


@dataclass
class _Passes:
    """The build passes as tasks.building and tasks.assembling run them, on the step's
    result types: the same work files read, checked against the same seals."""

    build: Any  # steps.building.Build
    catalog: Any  # finish-build audits a quarantine there
    plan: Any  # steps.building.Plan
    pool: ThreadPoolExecutor

    def count(self) -> list[Any]:
        """count-classes, mapped over the partitions."""
        from databourse.steps import building
        from tasks.work_files import source_file, work_folder

        store, pointer = self.build.store, self.plan.to_json()

        def one(part: Any) -> Any:
            with source_file(store, pointer) as source, work_folder(store, self.plan.work, {}) as w:
                return building.count_classes(self.build, part, source, w)

        return [c for c in self.pool.map(one, self.plan.partitions) if c is not None]

    def decide(self, counted: list[Any]) -> Any:
        """decide-privacy."""
        from databourse.steps import building
        from tasks.work_files import work_folder

        reads = building.expected([c.counts for c in counted], *(c.sealed for c in counted))
        with work_folder(self.build.store, self.plan.work, reads) as work:
            return building.decide_privacy(self.build, counted, work)

    def write(self, decided: Any) -> list[Any]:
        """write-records, mapped over the partitions."""
        from databourse.steps import building
        from tasks.work_files import source_file, work_folder

        store, pointer = self.build.store, self.plan.to_json()
        reads = building.expected(decided.names(), decided.sealed)

        def one(part: Any) -> Any:
            with (
                source_file(store, pointer) as source,
                work_folder(store, self.plan.work, reads) as work,
            ):
                return building.write_records(self.build, part, decided, source, work)

        return list(self.pool.map(one, self.plan.partitions))

    def lay_out(self, decided: Any, written: list[Any]) -> Any:
        """lay-out-files (an aggregate's cells in the work folder)."""
        from databourse.steps import assembling
        from tasks.work_files import work_folder

        if self.build.product.type != "aggregate":
            return assembling.lay_out_files(self.build, decided, written)
        reads = assembling.cells_reads(self.plan, written)
        with work_folder(self.build.store, self.plan.work, reads) as work:
            return assembling.lay_out_files(self.build, decided, written, work)

    def write_files(self, decided: Any, layout: Any) -> list[Any]:
        """write-file, mapped over the layout's files."""
        from databourse.steps import assembling
        from tasks.work_files import work_folder

        def one(file: dict[str, Any]) -> Any:
            reads = assembling.file_reads(self.build, self.plan, file)
            with work_folder(self.build.store, self.plan.work, reads) as work:
                return assembling.write_file(self.build, decided, file, work)

        return list(self.pool.map(one, layout.files))

    def finish(self, decided: Any, layout: Any, files: list[Any]) -> Any:
        """finish-build: verify, content hash, stage the files under it."""
        from databourse.steps import assembling
        from tasks.work_files import work_folder

        reads = assembling.finish_reads(self.build, self.plan, layout, files)
        with work_folder(self.build.store, self.plan.work, reads) as work:
            return assembling.finish_build(
                self.build, self.catalog, self.plan, decided, layout, files, work
            )


def stage_package(s: Stage) -> dict[str, Any]:
    """The package-version task: steps.packaging.package_version (version, files, manifest)."""
    from databourse.steps.assembling import Anonymized
    from databourse.steps.packaging import package_version

    anonymized = Anonymized.from_json(s.state["anonymized"])
    packaged = package_version(s.res, PRODUCT, anonymized, partial(trusted_staged, s.res))
    return {"version": packaged.version, "new": packaged.new}


def stage_publish(s: Stage) -> dict[str, Any]:
    """The decide-transfers and export-catalog tasks: steps.publishing.decide_transfers and
    standards.exports.export_catalog (no approval form, no audit anchor: no Prefect here)."""
    from databourse.standards.exports import export_catalog
    from databourse.steps.publishing import decide_transfers

    decisions = decide_transfers(s.res, PRODUCT, s.state["version"])
    s.mark("decide-transfers")
    export_catalog(s.res.catalog, s.res.store)
    return {"decisions": {d["market"]: d["status"] for d in decisions}}


STAGE_RUNS: dict[str, Callable[[Stage], dict[str, Any]]] = {
    "ingest": stage_ingest, "quality": stage_quality, "pii": stage_pii,
    "anonymize": stage_anonymize, "package": stage_package, "publish": stage_publish,
}  # fmt: skip


def _bare_stage(state: dict[str, Any]) -> Stage:
    """A probe for the baseline: nothing but pyarrow imported."""
    importlib.import_module("pyarrow.csv")
    importlib.import_module("pyarrow.parquet")
    return Stage(None, state)


def _setup(stage: str, state: dict[str, Any]) -> Stage:
    """Imports, configs, store and catalog as a task's worker has them (not timed)."""
    for name in (*IMPORTS, *STAGE_IMPORTS[stage]):
        importlib.import_module(name)
    from databourse.catalog.database import Catalog
    from databourse.config import load_config
    from databourse.keys import Key
    from databourse.steps.resources import Resources
    from databourse.storage.opening import open_store

    cfg = load_config(REPO / "configs")
    audit_key = Key("audit", "default", "benchmark", AUDIT_KEY)  # its own catalog, its own key
    catalog = Catalog(cfg.catalog_url, audit_keys=lambda: [audit_key])
    catalog.create_schema()
    store = open_store(
        cfg.store_root, endpoint_url=cfg.s3_endpoint_url, region=cfg.settings.storage.region
    )
    return Stage(Resources(cfg, store, catalog), state)


def child(stage: str, work: Path, profile: list[str]) -> None:
    """Run one stage (or `bare`, or `generate`, or `a,b,c`: several in turn, as one worker
    process runs a flow run's tasks) in this process; print each one's figures as JSON."""
    state = json.loads((work / "state.json").read_text())
    if stage == "generate":
        write_csv(Path(state["source"]), state["rows"])
        return
    stages = stage.split(",")
    if len(stages) > 1:
        first = _setup(stages[0], state)
        for name in stages[1:]:  # every import and the config paid once, before any timing
            _setup(name, state)
        for name in stages:
            Path("/proc/self/clear_refs").write_text("5")  # peak RSS from here on: this stage's
            run = Stage(first.res, state)
            figures = _run_stage(name, run, work, name in profile)
            state |= figures["state"]
            print(json.dumps({"stage": name, **figures}), flush=True)
        return
    run = _bare_stage(state) if stage == "bare" else _setup(stage, state)
    print(json.dumps({"stage": stage, **_run_stage(stage, run, work, stage in profile)}))


def _run_stage(stage: str, run: Stage, work: Path, profile: bool) -> dict[str, Any]:
    """One stage's work, timed from now, and its figures."""
    import pyarrow as pa

    run.start, run.cpu = time.perf_counter(), time.process_time()
    pool_peak = pa.default_memory_pool().max_memory()
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    if stage == "bare":
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        table = pacsv.read_csv(run.state["source"])
        run.mark("read_csv")
        pq.write_table(table, work / "bare.parquet", compression="zstd")
        out: dict[str, Any] = {}
    else:
        out = STAGE_RUNS[stage](run)
    seconds = time.perf_counter() - run.start
    if profiler:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    # The pool's peak cannot be reset: a stage after a larger one shows the larger peak ("<=").
    arrow = pa.default_memory_pool().max_memory()
    figures = {"seconds": seconds, "cpu": time.process_time() - run.cpu,
               "peak_mib": _status_mib("VmHWM"), "marks": run.marks,
               "arrow_peak_mib": arrow / 2**20,
               "arrow_exact": arrow > pool_peak or not pool_peak}  # fmt: skip
    return {**figures, "state": out}


# ---------------------------------------------------------------- the parent
def measure(stage: str, work: Path, profile: list[str], max_rss_mib: float) -> list[dict[str, Any]]:
    """Run a stage (or `a,b,c` in turn) in a child on the run's store, one figure per stage;
    kill it past `max_rss_mib` of RSS (the failing stage gets {"error": ...})."""
    env = {**os.environ, "DATABOURSE_CONFIG_DIR": str(REPO / "configs"),  # tasks.resources'
           "DATABOURSE_STORE_ROOT": str(work / "store"),
           "DATABOURSE_CATALOG_URL": f"sqlite:///{work / 'catalog.db'}",
           "DATABOURSE_STATE_DIR": str(work / "state")}  # fmt: skip
    cmd = [sys.executable, __file__, "--child", stage, str(work)]
    out, err = work / f"{stage}.out", work / f"{stage}.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            cmd + (["--profile-child", ",".join(profile)] if profile else []),
            stdout=stdout,
            stderr=stderr,
            env=env,
        )
        killed = 0.0
        while proc.poll() is None:
            if (rss := _status_mib("VmRSS", proc.pid)) > max_rss_mib:
                killed = rss
                proc.kill()  # our own child, by its handle
                proc.wait()
            time.sleep(0.2)
    if profile:
        sys.stderr.write(err.read_text())
    figures = [json.loads(x) for x in out.read_text().splitlines() if x.startswith("{")]
    if proc.returncode != 0:
        why = f"killed at {killed:.0f} MiB RSS" if killed else _last_line(err) or "failed"
        stages = stage.split(",")
        return [*figures, {"stage": stages[len(figures)], "error": why}]
    return figures


def _last_line(path: Path) -> str:
    lines = [x for x in path.read_text().splitlines() if x.strip()]
    return lines[-1][:300] if lines else ""


def plan(selected: list[str]) -> list[tuple[str, bool]]:
    """(stage, measured) in pipeline order: the selected ones and every stage they need."""
    needed = set(selected)
    for stage in reversed(STAGES):
        if stage in needed:
            needed |= set(NEEDS.get(stage, []))
    first = [("bare", True)] if "bare" in selected else []
    return first + [(s, s in selected) for s in STAGES if s in needed]


def run_size(rows: int, args: argparse.Namespace) -> None:
    """Generate the file, run the planned stages, print a line per stage and the targets."""
    work = Path(tempfile.mkdtemp(prefix=f"bench-pipeline-{rows}-"))
    try:
        source = work / "readings.csv"
        state: dict[str, Any] = {"source": str(source), "rows": rows}
        (work / "state.json").write_text(json.dumps(state))
        cmd = [sys.executable, __file__, "--child", "generate", str(work)]
        subprocess.run(cmd, check=True)  # in a child: the parent stays small
        size_mb = source.stat().st_size / 1e6
        done: dict[str, dict[str, Any]] = {}
        planned = plan(args.stages)
        measured = {stage for stage, m in planned if m}
        for group in _groups([stage for stage, _ in planned], args.process):
            profiled = [stage for stage in group if stage in args.profile]
            for got in measure(",".join(group), work, profiled, args.max_rss_mb):
                stage = got["stage"]
                if "error" in got:
                    print(f"{rows:>10} {size_mb:>7.0f} {stage:>9}  FAILED: {got['error']}")
                    return
                state |= got["state"]
                (work / "state.json").write_text(json.dumps(state, default=str))
                if stage in measured:
                    done[stage] = got
                    _print_stage(rows, size_mb, stage, got, done.get("bare"))
                else:
                    print(f"{rows:>10} {size_mb:>7.0f} {stage:>9}  (run because a stage needs it)")
        _print_targets(rows, done, state, args.process)
    finally:
        if args.keep:
            print(f"{'':>10} kept {work}")
        else:
            import shutil

            shutil.rmtree(work, ignore_errors=True)


def _groups(stages: list[str], process: str) -> list[list[str]]:
    """The processes to start: the baseline alone, then every stage in one or each in its own."""
    bare = [["bare"]] if "bare" in stages else []
    rest = [s for s in stages if s != "bare"]
    if process == "one":
        return bare + ([rest] if rest else [])
    return bare + [[s] for s in rest]


def _print_stage(
    rows: int, size_mb: float, stage: str, got: dict[str, Any], bare: dict[str, Any] | None
) -> None:
    ratio = f"{got['seconds'] / bare['seconds']:>7.2f}" if bare else f"{'-':>7}"
    arrow = f"{'' if got.get('arrow_exact', True) else '<='}{got['arrow_peak_mib']:.0f}"
    print(
        f"{rows:>10} {size_mb:>7.0f} {stage:>9} {got['seconds']:>8.2f} {got['cpu']:>7.2f} "
        f"{rows / got['seconds']:>11,.0f} {got['peak_mib']:>9.0f} {arrow:>9} "
        f"{ratio}"
    )
    for m in got["marks"]:
        print(f"{'':>30}after {m['step']:<18} {m['s']:>7.2f} s  RSS {m['rss']:>5} MiB  "
              f"peak {m['hwm']:>5} MiB  Arrow {m['arrow']:>5} MiB")  # fmt: skip


def _print_targets(
    rows: int, done: dict[str, dict[str, Any]], state: dict[str, Any], process: str
) -> None:
    stages = [s for s in STAGES if s in done]
    if not stages:
        return
    total, cpu = (sum(done[s][k] for s in stages) for k in ("seconds", "cpu"))
    worst = max(stages, key=lambda s: float(done[s]["peak_mib"]))
    peak = float(done[worst]["peak_mib"])
    where = "in one process" if process == "one" else "each in its own process"
    line = (
        f"{rows:>10} pipeline {total:.2f} s over {len(stages)} stage(s) {where}, "
        f"{rows / total:,.0f} rows/s"
    )
    if "bare" in done and len(stages) == len(STAGES):
        ratio = total / done["bare"]["seconds"]
        verdict = "PASS" if ratio <= TIME_TARGET else "MISS"
        line += f"; x{ratio:.2f} bare: {verdict} (target <= x{TIME_TARGET:g})"
        line += f"; CPU x{cpu / done['bare']['cpu']:.2f} bare"
    verdict = "PASS" if peak < RSS_TARGET_MIB else "MISS"
    line += f"; peak RSS {peak:.0f} MiB ({worst}): {verdict} (target < {RSS_TARGET_MIB:.0f} MiB)"
    print(line)
    if "decisions" in state:
        print(f"{'':>10} {PRODUCT}@{state.get('version')}: {state['decisions']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000, 20_000_000])
    choices = ["bare", *STAGES]
    parser.add_argument("--stages", nargs="+", choices=choices, default=choices,
                        help="stages to measure (the ones they need also run)")  # fmt: skip
    parser.add_argument("--profile", nargs="+", choices=choices, default=[],
                        help="cProfile these stages (to stderr)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep each size's temp folder")
    parser.add_argument("--process", choices=["one", "per-stage"], default="one",
                        help="stages in one process, as a worker runs a flow run (default), or "
                        "each in a fresh one")  # fmt: skip
    parser.add_argument("--max-rss-mb", type=float, default=8192,
                        help="kill a stage whose RSS exceeds this (MiB)")  # fmt: skip
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "WORK"), help=argparse.SUPPRESS)
    parser.add_argument("--profile-child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.profile_child.split(","))
        return
    print(
        f"{'rows':>10} {'CSV MB':>7} {'stage':>9} {'seconds':>8} {'CPU s':>7} {'rows/s':>11} "
        f"{'peak MiB':>9} {'Arrow MiB':>9} {'x bare':>7}"
    )
    for rows in args.rows:
        run_size(rows, args)


if __name__ == "__main__":
    main()
