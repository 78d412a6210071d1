"""Setting up a project: check and export the configs, create the keys, write sample provider
drops."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bourse.commands.shared import JsonOpt, fail, out, print_json
from databourse.errors import DataBourseError

config_app = typer.Typer(help="Check and export the configs.", no_args_is_help=True)
secrets_app = typer.Typer(help="Secrets the pipeline needs.", no_args_is_help=True)
samples_app = typer.Typer(help="Sample provider drops.", no_args_is_help=True)


@config_app.command("check")
def config_check(as_json: JsonOpt = False) -> None:
    """Load every config file; list every problem by file and key path."""
    from databourse.config import load_config
    from databourse.errors import ConfigError
    from databourse.quality.suite import check_suite

    try:
        cfg = load_config()
        problems: list[str] = []
        for pid, provider in cfg.providers.items():
            for name, spec in provider.datasets.items():
                try:
                    check_suite(spec)
                except ConfigError as exc:
                    file = cfg.files[f"provider/{pid}"]
                    problems += [f"{file}: datasets.{name}.{p}" for p in exc.problems]
        if problems:
            raise ConfigError(problems)
    except ConfigError as exc:  # each problem on its own line (a JSON list with --json)
        fail(f"{len(exc.problems)} config problem(s):", details=exc.problems)
    except DataBourseError as exc:
        fail(str(exc))
    counts = {
        "providers": len(cfg.providers),
        "products": len(cfg.products),
        "origins": len(cfg.policy.origins),
    }
    if as_json:
        print_json({"ok": True, **counts})
        return
    out.print(
        f"ok: {counts['providers']} provider(s), {counts['products']} product(s), "
        f"{counts['origins']} origin rule set(s)"
    )


@config_app.command("export-odcs")
def config_export_odcs(
    provider: Annotated[str, typer.Argument(help="The provider's id (configs/providers/).")],
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Write the contract to this file instead of standard output."),
    ] = None,
) -> None:
    """Write a provider's datasets as an ODCS v3 data contract (YAML), checked against the
    standard's JSON schema; as `configs/providers/<id>.odcs.yaml` it replaces `<id>.yaml`."""
    from databourse.config import load_config
    from databourse.config.odcs_export import odcs_yaml
    from databourse.errors import ConfigError

    try:
        cfg = load_config()
        if provider not in cfg.providers:
            raise ConfigError([f"unknown provider {provider!r}; known: {sorted(cfg.providers)}"])
        text = odcs_yaml(cfg.providers[provider])
    except ConfigError as exc:
        fail(f"{len(exc.problems)} config problem(s):", details=exc.problems)
    if out_file is None:
        sys.stdout.write(text)
        return
    try:
        out_file.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out_file}: {exc.strerror}")
    out.print(f"{provider}: ODCS contract written to {out_file}", highlight=False, markup=False)


@secrets_app.command("init")
def secrets_init() -> None:
    """Create the pseudonym and audit keys as private key files (0600), if none is set."""
    from bourse.demo import ensure_keys

    try:
        lines = ensure_keys()
    except DataBourseError as exc:
        fail(str(exc))
    out.print("\n".join(lines), highlight=False, markup=False)


@samples_app.command("generate")
def samples_generate(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the drops into.")],
    scale: Annotated[
        float, typer.Option(help="Size of the drops (1.0 = a few thousand rows each).")
    ] = 1.0,
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed and scale write the same drops.")
    ] = 20261120,
) -> None:
    """Write the sample provider drops (deterministic for a seed)."""
    from databourse_samples.demo import generate_drops

    for d in generate_drops(out_dir, seed=seed, scale=scale):
        out.print(f"{d.provider}/{d.dataset}: {d.rows} rows -> {d.path}")
