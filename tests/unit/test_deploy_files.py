"""deploy/ names real commands: every ``tradewind`` command line of the Procfile and of
the systemd units is a subcommand that exists, with options it accepts; the units and
the Procfile run the same set of processes (core, its standby, projector, API, market
maker), so an operator following either gets the whole deployment."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def procfile_commands() -> dict[str, list[str]]:
    found = {}
    for line in (DEPLOY / "Procfile").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, command = line.partition(":")
            found[name.strip()] = shlex.split(command)
    return found


def unit_commands() -> dict[str, list[str]]:
    found = {}
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        match = re.search(r"^ExecStart=(.+)$", unit.read_text(), re.MULTILINE)
        assert match, f"{unit.name} has no ExecStart"
        found[unit.name] = shlex.split(match.group(1))
    return found


def timed_units() -> set[str]:
    """Units a ``.timer`` starts (a scheduled job such as reconcile), not processes."""
    return {t.with_suffix(".service").name for t in (DEPLOY / "systemd").glob("*.timer")}


def test_procfile_and_units_run_every_process_of_a_deployment() -> None:
    def subcommands(commands: dict[str, list[str]]) -> list[str]:
        return sorted(argv[1] for argv in commands.values())

    processes = {k: v for k, v in unit_commands().items() if k not in timed_units()}
    procfile, units = subcommands(procfile_commands()), subcommands(processes)
    assert procfile.count("core") == 2  # the active core and its hot standby
    assert set(procfile) == set(units) >= {"api", "core", "marketmaker", "projector"}
    assert units.count("core") == 2
    cores = [a for a in processes.values() if a[1] == "core"]
    assert cores[0] == cores[1]  # the standby shares the data dir: the lock and lease fence


def test_each_timer_starts_a_oneshot_unit_that_exists() -> None:
    for service in timed_units():
        unit = (DEPLOY / "systemd" / service).read_text()
        assert re.search(r"^Type=oneshot$", unit, re.MULTILINE), service


@pytest.mark.parametrize(
    "argv",
    [*procfile_commands().values(), *unit_commands().values()],
    ids=lambda argv: " ".join(argv[1:3]),
)
def test_each_deploy_command_is_accepted_by_the_cli(argv: list[str]) -> None:
    assert Path(argv[0]).name == "tradewind"
    options = [a for a in argv[2:] if a.startswith("--")]
    code = "from tradewind.runtime.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, argv[1], "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for option in options:
        assert option in done.stdout, f"tradewind {argv[1]} has no {option}"
