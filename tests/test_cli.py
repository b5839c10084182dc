"""The command line's contract: subcommands, exit codes, one-line errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nicbook import cli, data
from nicbook.errors import DataNotFoundError


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nicbook", *args], capture_output=True, text=True, env=env, timeout=120)


def test_version_and_help():
    assert run("--version").stdout.startswith("nicbook ")
    result = run("--help")
    assert result.returncode == 0 and "data" in result.stdout


def test_data_status_reports_missing_data(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cli.main(["data", "status"]) == 0
    out = capsys.readouterr().out
    assert "(unset)" in out and "Kodak available: False" in out


def test_user_errors_become_one_line_messages(monkeypatch, capsys):
    def fail(args):
        raise DataNotFoundError("the Kodak images were not found")

    monkeypatch.setattr(data, "_cli_data", fail)
    assert cli.main(["data", "kodak"]) == 1
    err = capsys.readouterr().err
    assert err == "nicbook data: error: the Kodak images were not found\n"


def test_unknown_command_is_a_usage_error():
    result = run("no-such-command")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    with pytest.raises(SystemExit):
        cli.main(["no-such-command"])
