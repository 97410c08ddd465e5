"""The ``sciml`` command: dispatch to every ``python -m sciml.<command>``, ``--version``, and a fast
``--help`` that imports no torch."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import time

import pytest

from sciml.cli import COMMANDS, main

ALL_COMMANDS = ["train", "evaluate", "zoo", "bench", "datasets", "reproduce"]


def _fastest(command: list[str], repeats: int = 3) -> float:
    """The shortest wall time of ``repeats`` runs of ``command`` (each must succeed)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, timeout=120)
        times.append(time.perf_counter() - start)
    return min(times)


def test_help_and_version_import_no_torch():
    code = (
        "import sys, sciml.cli as cli\n"
        "assert cli.main(['--help']) == 0 and cli.main(['--version']) == 0\n"
        "print(sorted(m for m in ('torch', 'numpy', 'yaml') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_help_takes_well_under_a_second_more_than_a_bare_python():
    bare = _fastest([sys.executable, "-c", "pass"])
    helped = _fastest([sys.executable, "-m", "sciml", "--help"])
    assert helped - bare < 1.0, f"sciml --help took {helped:.2f} s against {bare:.2f} s for python -c pass"


def test_help_lists_every_command_with_one_line_each(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert list(COMMANDS) == ALL_COMMANDS
    for name in ALL_COMMANDS:
        (line,) = [line for line in out.splitlines() if line.strip().startswith(f"{name} ")]
        assert COMMANDS[name].summary in line
    assert "``" not in out and ":mod:" not in out  # plain text, no reST markup


def test_version_is_the_installed_distributions(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"sciml {importlib.metadata.version('sciml')}"


def test_python_dash_m_sciml_is_the_same_command():
    result = subprocess.run(
        [sys.executable, "-m", "sciml", "--version"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == f"sciml {importlib.metadata.version('sciml')}"


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_every_command_has_its_own_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"usage: sciml {command} ")  # not "python -m sciml.{command}"
    module = importlib.import_module(COMMANDS[command].module)
    with pytest.raises(SystemExit):
        module.main(["--help"])  # the python -m form keeps its own name
    assert capsys.readouterr().out.startswith(f"usage: python -m sciml.{command} ")


def test_arguments_reach_the_command(capsys, caplog, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "list"]) == 0
    listing = capsys.readouterr().out
    assert "bench_navier_stokes" in listing and "script missing" not in listing
    assert main(["reproduce", "list"]) == 0
    assert "lsm" in capsys.readouterr().out
    assert main(["datasets", "generate", "ns_quik"]) == 2  # the command's own exit code and error
    assert "did you mean 'ns_quick'" in caplog.text


def test_no_or_an_unknown_command_is_an_error_with_a_hint(capsys):
    assert main([]) == 2
    assert "usage: sciml COMMAND" in capsys.readouterr().err
    assert main(["trian", "quickstart"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "sciml: unknown command 'trian'; did you mean 'train'? (see sciml --help)"
