"""Structure: one-way layers, every CLI command documented, every flow entrypoint loads."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

REPO = Path(__file__).resolve().parents[2]
LAYERS = {
    "databourse": {"prefect", "flows", "tasks", "bourse", "databourse_samples"},
    "tasks": {"flows", "bourse"},
    "flows": {"bourse"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_layers_import_only_downwards(package: str) -> None:
    bad = {
        str(p.relative_to(REPO)): sorted(imported_modules(p) & LAYERS[package])
        for p in (REPO / package).rglob("*.py")
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_domain_package_loads_without_prefect() -> None:
    code = (
        "import sys, pkgutil, importlib, databourse\n"
        "for m in pkgutil.walk_packages(databourse.__path__, 'databourse.'):\n"
        "    if not m.name.startswith('databourse.migrations'):\n"
        "        importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n == 'prefect' or n.startswith('prefect.'))\n"
        "assert not bad, bad[:5]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


FIRST_PARTY = {"databourse", "databourse_samples", "bourse", "flows", "tasks", "benchmarks"}
MAX_LINES = 400  # issue 17: a module longer than this mixes concerns


def python_files() -> list[Path]:
    return [p for d in [*FIRST_PARTY, "tests"] for p in (REPO / d).rglob("*.py")]


def test_no_module_imports_another_modules_private_name() -> None:
    found = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
                continue
            if node.module.split(".")[0] in FIRST_PARTY:
                found += [f"{path.relative_to(REPO)}: {node.module}.{a.name}"
                          for a in node.names if a.name.startswith("_")]  # fmt: skip
    assert found == []


def test_no_module_is_over_the_line_limit() -> None:
    long = {
        str(p.relative_to(REPO)): n
        for p in (
            REPO / d / "" for d in ("databourse", "databourse_samples", "bourse", "flows", "tasks")
        )
        for p in p.rglob("*.py")
        if "migrations" not in p.parts and (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


TASK_BODY_LINES = 15  # issue 17: a task is resources, one step, logging, artifacts


def test_every_task_body_is_a_short_wrapper_of_one_step() -> None:
    long = {}
    for path in (REPO / "tasks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if not any(ast.unparse(d).startswith("task") for d in node.decorator_list):
                continue
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            lines = (body[-1].end_lineno or 0) - body[0].lineno + 1 if body else 0
            if lines > TASK_BODY_LINES:
                long[f"{path.name}:{node.name}"] = lines
    assert long == {}


def test_no_flow_file_shadows_a_package() -> None:
    shadowing = {"tasks.py", "configs.py", "databourse.py", "flows.py", "prefect.py"}
    assert not {p.name for p in (REPO / "flows").glob("*.py")} & shadowing


def cli_app() -> typer.Typer:
    """The CLI's app, imported with this process's environment put back afterwards: the import
    runs `runtime.configure()`, whose managed-server settings (API URL, auth string) would reach
    every server and runner later tests start in this process."""
    saved = dict(os.environ)
    try:
        from bourse.cli import app
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return app


def all_commands() -> list[list[str]]:
    app = cli_app()
    group = typer.main.get_command(app)
    found: list[list[str]] = []

    def walk(cmd: object, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            found.append(path)

    walk(group, [])
    return found


def test_every_cli_command_has_help_and_is_in_the_readme() -> None:
    app = cli_app()

    readme = (REPO / "README.md").read_text()
    group = typer.main.get_command(app)
    commands = all_commands()
    assert len(commands) >= 17
    for path in commands:
        cmd = group
        for part in path:
            cmd = cmd.commands[part]  # type: ignore[attr-defined]
        assert (cmd.help or "").strip(), f"bourse {' '.join(path)} has no help text"
        assert f"bourse {' '.join(path)}" in readme, (
            f"README does not mention bourse {' '.join(path)}"
        )


def test_cli_help_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bourse", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    ).stdout
    assert "approve" in out and "catalog" in out and "demo" in out


@pytest.mark.parametrize(
    "entrypoint",
    [
        "flows.process_drop:process_drop",
        "flows.publish_product:publish_product",
        "flows.ingest_dataset:ingest_dataset",
        "flows.validate_dataset:validate_dataset",
        "flows.build_product:build_product",
    ],
)
def test_flow_entrypoints_load(entrypoint: str) -> None:
    module, name = entrypoint.split(":")
    flow = getattr(importlib.import_module(module), name)
    assert flow.name == name.replace("_", "-")
    assert flow.__doc__ or flow.fn.__doc__


def test_deploy_file_entrypoints_match_the_served_deployments() -> None:
    import yaml

    spec = yaml.safe_load((REPO / "deploy" / "prefect.yaml").read_text())
    served = {}
    for dep in spec["deployments"]:
        path, name = dep["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        served[dep["name"]] = getattr(module, name).name
        assert (REPO / path).is_file()
    assert served == {
        "gated": "publish-product",
        "on-demand": "process-drop",
        "drop": "process-drop",
        "nightly": "nightly",
        "discover": "discover-landing",
    }
    from bourse.serving import runner_deployments

    assert {d.name: d.flow_name for d in runner_deployments()} == served
    from bourse.localserver import RUNNER_READY_DEPLOYMENT
    from flows.publish_product import DEPLOYMENT

    assert DEPLOYMENT == RUNNER_READY_DEPLOYMENT == "publish-product/gated"
