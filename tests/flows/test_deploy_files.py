"""deploy/: every file checked against the code, and prefect.yaml deployed to a real server.

Docker and Kubernetes do not run on the dev/CI machines, so the Dockerfile, the compose file and
the manifests are checked as far as reading them allows: they parse, their images are pinned and
agree with pyproject.toml and constraints.txt, their entrypoints and parameters are accepted by
the real flows, the environment variables they set are ones the code reads, and no secret value
is written in them. Prefect's own models and validators do the checking where they exist.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import httpx
import pytest
import yaml
from helpers import api, own_prefect_server

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
POOL = "databourse"
SECRET = "databourse-secrets"
IMAGE = f"databourse/flow-run:{VERSION}"
# deployment name -> flow name; code starts "publish-product/gated" by name
FLOW_OF = {
    "nightly": "nightly",
    "on-demand": "process-drop",
    "drop": "process-drop",
    "gated": "publish-product",
    "discover": "discover-landing",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY|TOKEN|AUTH")
REF = r"\$\{[A-Z][A-Z0-9_]*(?::?[-?][^}]*)?\}"


# ---------------------------------------------------------------- readers
def prefect_yaml() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "prefect.yaml").read_text())


def deployments() -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in prefect_yaml()["deployments"]}


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def k8s_docs() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
    ]


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def job_template() -> dict[str, Any]:
    return json.loads((K8S / "base-job-template.json").read_text())


def pin(name: str, text: str) -> str:
    found = re.findall(rf"^{re.escape(name)}==([^\s;#\"]+)", text, flags=re.M | re.I)
    assert len(found) == 1, f"{name} is not pinned exactly once"
    return found[0]


def prefect_pin() -> str:
    return pin("prefect", "\n".join(PYPROJECT["project"]["dependencies"]))


def flow_of(deployment: dict[str, Any]) -> Any:
    path, name = deployment["entrypoint"].split(":")
    assert (REPO / path).is_file(), path
    return getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def strings(node: Any) -> Iterator[str]:
    """Every string in nested dicts and lists."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict | list):
        for item in node.values() if isinstance(node, dict) else node:
            yield from strings(item)


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in nested dicts and lists."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


# ---------------------------------------------------------------- which variables exist
def names_the_code_reads() -> set[str]:
    sources = [
        p for pkg in ("databourse", "tasks", "flows", "bourse") for p in (REPO / pkg).rglob("*.py")
    ]
    text = (
        "".join(p.read_text() for p in sources) + (REPO / "configs" / "settings.yaml").read_text()
    )
    return set(re.findall(r"\b((?:DATABOURSE|GX)_[A-Z0-9_]+)\b", text))


def allowed_env_names() -> set[str]:
    """Names read by our code, by Prefect (its settings), by boto3 (credentials), or the shell."""
    from botocore.credentials import EnvProvider
    from prefect.settings.legacy import _get_valid_setting_names  # Prefect's list of its names
    from prefect.settings.models.root import Settings

    placeholders = set(re.findall(r"\{\{\s*\$(\w+)\s*\}\}", (DEPLOY / "prefect.yaml").read_text()))
    return (
        names_the_code_reads()
        | placeholders
        | set(_get_valid_setting_names(Settings))
        | {EnvProvider.ACCESS_KEY, EnvProvider.SECRET_KEY}
        | {"HOME"}
    )


def assert_no_inline_secret(where: str, name: str, value: Any) -> None:
    text = str(value)
    if SECRET_NAME.search(name) and isinstance(value, str):
        assert re.fullmatch(REF, text), f"{where}: {name} must be a ${{VAR}} reference"
    for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", text):
        assert re.fullmatch(REF, password), f"{where}: {name} holds a password in its URL"


# ---------------------------------------------------------------- every file
def test_every_yaml_and_json_file_parses() -> None:
    files = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert {p.name for p in files} >= {"prefect.yaml", "docker-compose.yml", "kustomization.yaml"}
    for path in files:
        docs = list(yaml.safe_load_all(path.read_text()))
        assert docs and all(isinstance(d, dict) for d in docs), path
    assert job_template()["job_configuration"]


@pytest.mark.parametrize("script", ["setup.sh", "postgres/init-catalog-db.sh"])
def test_shell_scripts_parse(script: str) -> None:
    subprocess.run(["sh", "-n", str(DEPLOY / script)], check=True)


# ---------------------------------------------------------------- prefect.yaml
def test_prefect_yaml_uses_only_keys_prefect_knows() -> None:
    """Prefect ignores unknown keys silently: a misspelled `concurency_limit` would do nothing."""
    from prefect.cli.deploy import _models as m  # the models `prefect deploy` reads the file with

    spec = prefect_yaml()
    top = {f.alias or name for name, f in m.PrefectYamlModel.model_fields.items()}
    assert set(spec) - top == {"definitions"}  # definitions: YAML anchors only
    assert spec["prefect-version"] == prefect_pin()
    for dep in spec["deployments"]:
        assert set(dep) <= set(m.DeploymentConfig.model_fields), dep["name"]
        assert set(dep["work_pool"]) <= set(m.WorkPoolConfig.model_fields), dep["name"]
        for schedule in dep.get("schedules", []):
            m.RawScheduleConfig.model_validate(schedule)  # extra keys forbidden there
        if isinstance(dep.get("concurrency_limit"), dict):
            assert set(dep["concurrency_limit"]) <= set(m.ConcurrencyLimitSpec.model_fields)
    m.PrefectYamlModel.model_validate(spec)


def test_prefect_yaml_declares_the_deployments() -> None:
    deps = deployments()
    assert set(deps) == set(FLOW_OF)
    for name, dep in deps.items():
        assert dep["work_pool"]["name"] == POOL, name
        assert "databourse" in dep["tags"] and dep["description"], name
        assert dep["enforce_parameter_schema"] is True, name
    pull = prefect_yaml()["pull"]
    assert pull == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $DATABOURSE_HOME }}"}}
    ]


@pytest.mark.parametrize("name", sorted(FLOW_OF))
def test_entrypoint_names_a_real_flow(name: str) -> None:
    from prefect import Flow

    flow = flow_of(deployments()[name])
    assert isinstance(flow, Flow)
    assert flow.name == FLOW_OF[name]
    if name == "gated":
        from bourse.localserver import RUNNER_READY_DEPLOYMENT
        from flows.publish_product import DEPLOYMENT

        assert f"{flow.name}/{name}" == DEPLOYMENT == RUNNER_READY_DEPLOYMENT
    if name == "drop":
        from tasks.dispatching import DROP_DEPLOYMENT

        assert f"{flow.name}/{name}" == DROP_DEPLOYMENT


def sample(schema: dict[str, Any]) -> Any:
    kinds = {p.get("type") for p in schema.get("anyOf", [schema])}
    return "x" if "string" in kinds else 1


@pytest.mark.parametrize("name", sorted(FLOW_OF))
def test_deployment_parameters_are_accepted_by_the_flow(name: str) -> None:
    from prefect.utilities.schema_tools.validation import validate

    flow = flow_of(deployments()[name])
    params = deployments()[name].get("parameters", {})
    schema = flow.parameters.model_dump_for_openapi()
    assert set(params) <= set(schema["properties"]), "a parameter the flow does not take"
    # what the server checks when the deployment is created (required ones come per run)
    validate(params, schema, raise_on_error=True, ignore_required=True)
    # and a whole run: deployment defaults plus the required parameters, bound to the signature
    run = {k: sample(schema["properties"][k]) for k in schema.get("required", [])} | params
    flow.validate_parameters(run)


def test_on_demand_runs_with_bad_parameters_are_refused() -> None:
    from prefect.utilities.schema_tools.validation import ValidationError, validate

    schema = flow_of(deployments()["on-demand"]).parameters.model_dump_for_openapi()
    assert set(schema["required"]) == {"provider", "dataset", "source"}
    with pytest.raises(ValidationError):
        validate({"provider": "p", "dataset": "d"}, schema, raise_on_error=True)
    with pytest.raises(ValidationError):
        bad = {"provider": "p", "dataset": "d", "source": "s", "publish_wait_seconds": "soon"}
        validate(bad, schema, raise_on_error=True)


def test_nightly_runs_at_two_in_the_morning_in_shanghai() -> None:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.client.schemas.schedules import CronSchedule as ClientCron
    from prefect.server.schemas.schedules import CronSchedule

    nightly = deployments()["nightly"]
    [schedule] = nightly["schedules"]
    assert (schedule["cron"], schedule["timezone"]) == ("0 2 * * *", "Asia/Shanghai")
    assert schedule["timezone"] in available_timezones()
    ClientCron(cron=schedule["cron"], timezone=schedule["timezone"])
    # the server's own computation of the next runs
    cron = CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    dates = asyncio.run(cron.get_dates(n=3, start=start))
    local = [d.astimezone(ZoneInfo("Asia/Shanghai")) for d in dates]
    assert [(d.hour, d.minute) for d in local] == [(2, 0)] * 3
    assert [d.astimezone(dt.UTC).hour for d in dates] == [18] * 3
    assert [b - a for a, b in itertools.pairwise(dates)] == [dt.timedelta(days=1)] * 2
    limit = ConcurrencyLimitConfig.model_validate(nightly["concurrency_limit"])
    assert (limit.limit, limit.collision_strategy.value) == (1, "CANCEL_NEW")


# ---------------------------------------------------------------- Dockerfile
def test_dockerfile_base_image_is_the_python_of_pyproject() -> None:
    from packaging.specifiers import SpecifierSet

    [base] = [args for op, args in dockerfile() if op == "FROM"]
    match = re.fullmatch(r"python:(3\.\d+)-slim(?:-\w+)?", base)
    assert match, base
    assert match.group(1) in SpecifierSet(PYPROJECT["project"]["requires-python"])


def test_dockerfile_copies_what_the_install_and_the_flows_need() -> None:
    copied: list[str] = []
    for op, args in dockerfile():
        if op == "COPY":
            *sources, _dest = args.split()
            copied += [s.rstrip("/") for s in sources if not s.startswith("--")]
    for source in copied:
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    packages = [
        p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    needed = {*packages, "pyproject.toml", "constraints.txt", PYPROJECT["project"]["readme"]}
    needed |= {"configs", "deploy/prefect.yaml", "deploy/setup.sh"}
    assert needed <= set(copied), needed - set(copied)


def test_dockerfile_installs_the_pinned_set() -> None:
    constraints = (REPO / "constraints.txt").read_text()
    assert pin("prefect", constraints) == prefect_pin()
    [install] = [args for op, args in dockerfile() if op == "RUN" and "pip install" in args]
    words = install.replace('"', "").split()
    assert words[words.index("-c") + 1] == "constraints.txt"
    [project] = [w for w in words if w == "." or w.startswith(".[")]
    extras = re.findall(r"[\w-]+", project[1:])
    optional = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for extra in extras:  # each extra exists and every package it adds is pinned
        for requirement in optional[extra]:
            pin(re.split(r"[\[<>=!~ ;]", requirement)[0], constraints)
    for extra in words[words.index(project) + 1 :]:  # anything beside the project is pinned too
        pin(re.sub(r"\[.*\]", "", extra), constraints)


def test_dockerfile_runs_a_worker_as_a_non_root_user() -> None:
    steps = dockerfile()
    user = [args for op, args in steps if op == "USER"][-1]
    assert user.split(":")[0] not in {"0", "root"}
    env = " ".join(args for op, args in steps if op == "ENV")
    workdir = [args for op, args in steps if op == "WORKDIR"][-1]
    assert f"DATABOURSE_HOME={workdir}" in env
    cmd = json.loads([args for op, args in steps if op == "CMD"][-1])
    assert cmd[:3] == ["prefect", "worker", "start"]
    assert cmd[cmd.index("--pool") + 1] == POOL
    assert set(re.findall(r"\b((?:DATABOURSE|PREFECT|GX)_\w+)=", env)) <= allowed_env_names()


# ---------------------------------------------------------------- docker-compose.yml
def image_tag(image: str) -> tuple[str, str]:
    name, _, tag = image.rpartition(":")
    assert name and tag and tag != "latest" and "/" not in tag, f"{image} is not pinned"
    return name, tag


def test_compose_images_are_pinned_and_agree_with_the_code() -> None:
    services = compose()["services"]
    tags = {name: image_tag(svc["image"]) for name, svc in services.items()}
    assert tags["prefect-server"] == ("prefecthq/prefect", f"{prefect_pin()}-python3.11")
    for name in ("setup", "worker"):
        assert services[name]["image"] == IMAGE
        build = services[name]["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert services["setup"]["command"] == ["sh", "deploy/setup.sh"]


def test_compose_services_wait_for_what_they_need() -> None:
    services = compose()["services"]
    for name, svc in services.items():
        if svc.get("restart") != "no":  # long-running: compose can tell when it is up
            assert svc.get("healthcheck", {}).get("test"), f"{name} has no health check"
        for needed, cond in svc.get("depends_on", {}).items():
            target = services[needed]
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in target, f"{name} waits for {needed}'s health check"
            else:
                assert cond["condition"] == "service_completed_successfully"
                assert target.get("restart") == "no", f"{needed} must be a one-shot job"
    assert (
        services["worker"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    )
    for svc in services.values():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            assert not source.startswith(".") or (DEPLOY / source).exists(), volume


def test_compose_credentials_come_from_the_env_file() -> None:
    text = " ".join(strings(compose()))
    example = (DEPLOY / ".env.example").read_text()
    declared = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", example, flags=re.M))
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    assert used and used <= set(declared), used - set(declared)
    for name, value in declared.items():
        if SECRET_NAME.search(name):
            assert value.startswith("change-me"), f".env.example: {name} is not a placeholder"
    for service, svc in compose()["services"].items():
        for name, value in svc.get("environment", {}).items():
            assert_no_inline_secret(f"compose {service}", name, value)


def test_compose_environment_names_are_read_by_someone() -> None:
    services = compose()["services"]
    init_script = (DEPLOY / "postgres" / "init-catalog-db.sh").read_text()
    allowed = allowed_env_names()
    for service, svc in services.items():
        names = set(svc.get("environment", {}))
        if service == "postgres":  # the official image's, and those the init script reads
            names -= {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
            assert all(f'"${n}"' in init_script for n in names), names
            continue
        assert names <= allowed, f"{service}: {sorted(names - allowed)} read by nothing"
    worker = services["worker"]["environment"]
    assert worker["DATABOURSE_CATALOG_URL"].startswith("postgresql+psycopg://")
    assert worker["DATABOURSE_STORE_ROOT"].startswith("s3://")
    server = services["prefect-server"]["environment"]
    assert server["PREFECT_SERVER_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")


# ---------------------------------------------------------------- Kubernetes
def test_k8s_manifests_are_complete_and_all_applied() -> None:
    docs = k8s_docs()
    for doc in docs:
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], doc
        assert doc["kind"] != "Secret", "secret values never live in the repository"
    kust = kustomization()
    listed = {*kust["resources"], *(f for g in kust["configMapGenerator"] for f in g["files"])}
    present = {p.name for p in K8S.iterdir()} - {"kustomization.yaml"}
    assert listed == present, listed ^ present
    for doc in docs:
        for container in containers(doc):
            name, tag = image_tag(container["image"])
            assert (name, tag) == ("prefecthq/prefect", f"{prefect_pin()}-python3.11-kubernetes")
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) == {"cpu", "memory"}, container["name"]


def test_k8s_worker_serves_the_pool_of_prefect_yaml_with_the_template() -> None:
    [worker] = [d for d in k8s_docs() if d["kind"] == "Deployment"]
    spec = worker["spec"]["template"]["spec"]
    [container] = spec["containers"]
    args = container["args"]
    assert args[:3] == ["prefect", "worker", "start"]
    assert args[args.index("--pool") + 1] == POOL == deployments()["nightly"]["work_pool"]["name"]
    assert args[args.index("--type") + 1] == "kubernetes"
    template = Path(args[args.index("--base-job-template") + 1])
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == str(template.parent)]
    [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    [generator] = kustomization()["configMapGenerator"]
    assert volume["configMap"]["name"] == generator["name"]
    assert generator["files"] == [template.name]
    accounts = {d["metadata"]["name"] for d in k8s_docs() if d["kind"] == "ServiceAccount"}
    assert spec["serviceAccountName"] in accounts


def test_k8s_settings_and_secrets_are_referenced_by_name_only() -> None:
    [config_map] = [d for d in k8s_docs() if d["kind"] == "ConfigMap"]
    allowed = allowed_env_names()
    assert set(config_map["data"]) <= allowed, set(config_map["data"]) - allowed
    for source in (*k8s_docs(), job_template()):
        for key, value in walk(source):
            if key == "secretKeyRef":
                assert value["name"] == SECRET and value["key"] in allowed, value
            elif key == "configMapKeyRef":
                assert value["name"] == config_map["metadata"]["name"], value
                assert value["key"] in config_map["data"], value
            elif key in ("configMapRef", "secretRef"):
                assert value["name"] in (config_map["metadata"]["name"], SECRET), value
            elif key == "env" and isinstance(value, list):
                assert {e["name"] for e in value} <= allowed, value


# ---------------------------------------------------------------- the pool's base job template
def rendered_job() -> dict[str, Any]:
    """The Job a flow run gets with the template's defaults, rendered as Prefect renders it."""
    from prefect.utilities.templating import apply_values
    from prefect.workers.base import BaseJobConfiguration

    template = job_template()
    defaults = BaseJobConfiguration._get_base_config_defaults(template["variables"]["properties"])
    return apply_values(template["job_configuration"], defaults)["job_manifest"]


def test_base_job_template_is_one_the_server_accepts() -> None:
    from prefect.server.schemas.actions import WorkPoolCreate
    from prefect.utilities.schema_tools.validation import is_valid_schema, validate

    template = job_template()
    WorkPoolCreate(name=POOL, type="kubernetes", base_job_template=template)  # server validation
    is_valid_schema(template["variables"])
    defaults = {
        k: v["default"] for k, v in template["variables"]["properties"].items() if "default" in v
    }
    validate(defaults, template["variables"], raise_on_error=True)


def test_base_job_template_runs_the_flow_run_image_with_limits() -> None:
    import jsonpatch

    job = rendered_job()
    # the structure prefect-kubernetes requires (its _get_base_job_manifest check)
    required = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"labels": {}},
        "spec": {
            "template": {
                "spec": {
                    "parallelism": 1,
                    "completions": 1,
                    "restartPolicy": "Never",
                    "containers": [{"name": "prefect-job"}],
                }
            }
        },
    }
    job["metadata"].setdefault("labels", {})  # as the worker does before its check
    ops = jsonpatch.JsonPatch.from_diff(job, required)
    assert [op for op in ops if op["op"] in ("add", "replace")] == []
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"].endswith("/" + IMAGE)
    assert job["metadata"]["namespace"] == kustomization()["namespace"]
    accounts = {d["metadata"]["name"] for d in k8s_docs() if d["kind"] == "ServiceAccount"}
    assert pod["serviceAccountName"] in accounts
    for kind in ("requests", "limits"):
        assert all(isinstance(v, str) and v for v in container["resources"][kind].values())
    user = [args for op, args in dockerfile() if op == "USER"][-1]
    assert str(pod["securityContext"]["runAsUser"]) == user.split(":")[0]


# ---------------------------------------------------------------- against real servers
PG_URL = os.environ.get(
    "DATABOURSE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.mark.postgres
def test_init_script_gives_the_catalog_a_database_of_its_own() -> None:
    """The compose postgres init script, run with psql as the image runs it; then the catalog."""
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.exc import OperationalError

    from databourse.catalog.database import Catalog

    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    admin_url = make_url(PG_URL)
    admin = create_engine(PG_URL, connect_args={"connect_timeout": 3}, isolation_level="AUTOCOMMIT")
    try:
        admin.connect().close()
    except OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {str(exc.orig).splitlines()[0]}")
    name, password = f"deploy_check_{uuid.uuid4().hex[:10]}", "pw with 'quotes\" and ;"
    env = {
        **os.environ,
        "PGHOST": admin_url.host or "127.0.0.1",
        "PGPORT": str(admin_url.port or 5432),
        "PGPASSWORD": admin_url.password or "",
        "POSTGRES_USER": admin_url.username or "postgres",
        "POSTGRES_DB": admin_url.database or "postgres",
        "CATALOG_DB_USER": name,
        "CATALOG_DB_PASSWORD": password,
        "CATALOG_DB_NAME": name,
    }
    script = DEPLOY / "postgres" / "init-catalog-db.sh"
    try:
        subprocess.run(["sh", str(script)], env=env, check=True, capture_output=True, timeout=60)
        url = admin_url.set(username=name, password=password, database=name)
        with Catalog(url.render_as_string(hide_password=False)) as catalog:
            catalog.create_schema()
            assert catalog.schema_revision()
        with admin.connect() as conn:
            owner = conn.execute(
                text("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :n"),
                {"n": name},
            ).scalar()
        assert owner == name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="module")
def own_prefect_api() -> Iterator[str]:
    """A Prefect server of this module's own, so the session's (the runner's) is left as it is.

    Deploying prefect.yaml there would re-bind `publish-product/gated`, which the `runner`
    fixture serves, to the work pool, and give the session a nightly schedule.
    """
    with own_prefect_server("databourse-deploy-") as url:
        yield url


@pytest.mark.prefect
def test_setup_script_deploys_prefect_yaml_to_a_real_server(own_prefect_api: str) -> None:
    """deploy/setup.sh (what compose runs): work pool, `prefect deploy --all`; then read back."""
    env = {**os.environ, "PREFECT_API_URL": own_prefect_api, "DATABOURSE_HOME": str(REPO)}
    env.pop("DATABOURSE_STORE_ROOT", None)  # no bucket to create on a local store
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        ["sh", str(DEPLOY / "setup.sh")], env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert api(own_prefect_api, "GET", f"/work_pools/{POOL}")["type"] == "process"
    found = {d["name"]: d for d in api(own_prefect_api, "POST", "/deployments/filter", {})}
    assert set(found) == set(FLOW_OF)
    flows = {f["id"]: f["name"] for f in api(own_prefect_api, "POST", "/flows/filter", {})}
    for name, spec in deployments().items():
        dep = found[name]
        assert flows[dep["flow_id"]] == FLOW_OF[name]
        assert dep["work_pool_name"] == POOL and dep["tags"] == spec["tags"]
        assert dep["parameters"] == spec.get("parameters", {})
        assert dep["enforce_parameter_schema"] is True
        assert dep["job_variables"] == spec["work_pool"]["job_variables"]
        # DATABOURSE_HOME was set when deploying: the path is fixed in the deployment
        directory = {"directory": str(REPO)}
        assert dep["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": directory}]
    check_nightly(own_prefect_api, found["nightly"])
    check_on_demand(own_prefect_api, found["on-demand"])


def check_nightly(base: str, dep: dict[str, Any]) -> None:
    [schedule] = dep["schedules"]
    assert schedule["active"] is True
    assert schedule["schedule"]["cron"] == "0 2 * * *"
    assert schedule["schedule"]["timezone"] == "Asia/Shanghai"
    assert dep["global_concurrency_limit"]["limit"] == 1
    assert dep["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    # the server schedules the next runs: 02:00 in Shanghai is 18:00 UTC
    api(base, "POST", f"/deployments/{dep['id']}/schedule", {"max_runs": 3})
    runs = api(
        base, "POST", "/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [dep["id"]]}}}
    )
    assert len(runs) >= 3
    starts = [dt.datetime.fromisoformat(r["expected_start_time"]) for r in runs]
    assert {(s.astimezone(dt.UTC).hour, s.minute) for s in starts} == {(18, 0)}
    for run in runs:  # no worker ever takes them: leave the server as found
        api(base, "DELETE", f"/flow_runs/{run['id']}")


def check_on_demand(base: str, dep: dict[str, Any]) -> None:
    assert dep["global_concurrency_limit"]["limit"] == 4
    assert dep["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    assert set(dep["parameter_openapi_schema"]["required"]) == {"provider", "dataset", "source"}
    path = f"{base}/deployments/{dep['id']}/create_flow_run"
    refused = httpx.post(path, json={"parameters": {"provider": "sz-retail"}}, timeout=30)
    assert refused.status_code == 409, refused.text  # dataset and source missing
    wrong = {"provider": "p", "dataset": "d", "source": "s", "publish_wait_seconds": "soon"}
    assert httpx.post(path, json={"parameters": wrong}, timeout=30).status_code == 409
    accepted = httpx.post(
        path, json={"parameters": {"provider": "p", "dataset": "d", "source": "s"}}, timeout=30
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["parameters"]["publish_wait_seconds"] == 300  # the deployment default
    api(base, "DELETE", f"/flow_runs/{accepted.json()['id']}")


@pytest.mark.prefect
def test_a_process_worker_runs_a_deployment_to_completion(
    own_prefect_api: str, tmp_path: Path
) -> None:
    """The real-server way: the databourse worker (the layouts' `--type databourse`, which runs
    only the project's imported flows) picks up a deployment run on the pool and ends it."""
    from helpers import make_project

    found = {d["name"]: d for d in api(own_prefect_api, "POST", "/deployments/filter", {})}
    if "discover" not in found:
        pytest.skip("needs the deployments of test_setup_script_deploys_prefect_yaml_...")
    project = make_project(tmp_path / "project")
    drop = project / "state/store/landing/sz-retail/customer_orders/orders.csv"
    drop.parent.mkdir(parents=True)
    drop.write_text("order_id\nA1\n")
    env = {
        **os.environ,
        "PREFECT_API_URL": own_prefect_api,
        "DATABOURSE_CONFIG_DIR": str(project / "configs"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as fh:
        worker = subprocess.Popen(
            ["prefect", "worker", "start", "--pool", POOL, "--type", "databourse"],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        run = api(
            own_prefect_api,
            "POST",
            f"/deployments/{found['discover']['id']}/create_flow_run",
            {"parameters": {"provider": "sz-retail"}},
        )
        deadline = time.monotonic() + 150
        state = None
        while time.monotonic() < deadline:
            state = api(own_prefect_api, "GET", f"/flow_runs/{run['id']}")["state"]
            if state and state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                break
            time.sleep(1)
        assert state is not None and state["type"] == "COMPLETED", (
            f"{state}\n{log.read_text()[-3000:]}"
        )
        artifacts = api(
            own_prefect_api,
            "POST",
            "/artifacts/filter",
            {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}},
        )
        [table] = [a for a in artifacts if a["type"] == "table"]
        rows = json.loads(table["data"]) if isinstance(table["data"], str) else table["data"]
        assert [(r["key"], r["status"]) for r in rows] == [
            ("landing/sz-retail/customer_orders/orders.csv", "new")
        ]
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=30)
