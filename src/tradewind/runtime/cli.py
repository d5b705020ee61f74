"""The ``tradewind`` command line. Each subcommand imports its module lazily so that
``tradewind --help`` stays fast and a broken optional part cannot break the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Tradewind exchange.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks.")
app.add_typer(bench_app, name="bench")


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="Command file (JSON lines).")],
    json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Apply a command file to a fresh core and print a summary."""
    from tradewind.runtime.replay import run_replay

    raise typer.Exit(run_replay(file, as_json=json))


@bench_app.command("engine")
def bench_engine(
    input: Annotated[
        Path | None, typer.Option("--input", help="Command file to measure instead.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Measure the core alone (parsing excluded)."""
    from tradewind.runtime.benchmark import run_engine_bench

    raise typer.Exit(run_engine_bench(input, as_json=json))


@app.command()
def verify(
    data_dir: Annotated[Path, typer.Argument(help="Data directory of the exchange.")],
) -> None:
    """Load snapshot + journal, check every invariant and print the state hash."""
    from tradewind.runtime.verify import run_verify

    raise typer.Exit(run_verify(data_dir))


def main() -> None:
    app()
