"""One error format and one table of exit codes (issue 11): every error the CLI prints is `edge: error: ...`, usage
errors included; the README's exit-code table lists exactly the codes the commands return; `--debug` is accepted
after every subcommand."""
import argparse
import ast
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli.commands import build_parser
from edge.service import config as service_config
from edge.service import health
from edge.service.systemd import Formatter, JournalFormatter

ROOT = Path(__file__).resolve().parent.parent
COMMAND_FILES = sorted((ROOT / "edge" / "cli").glob("*.py")) + [ROOT / "edge" / "service" / "daemon.py"]


def edge(*args):
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True, timeout=120)


def ints_in(node: ast.AST) -> set:
    """Integer literals in an expression, and the int constants it names from edge.service.config/health."""
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and type(sub.value) is int:
            found.add(sub.value)
        elif isinstance(sub, ast.Name):
            for module in (service_config, health):
                value = getattr(module, sub.id, None)
                if type(value) is int and sub.id.isupper():
                    found.add(value)
    return found


def codes_in_code() -> set:
    """What the commands return (functions annotated `-> int`), exit with (`*.exit(N)`), plus `edge health`'s."""
    codes = {health.READY, health.NOT_READY, health.UNREACHABLE}
    for path in COMMAND_FILES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and isinstance(node.returns, ast.Name) and node.returns.id == "int":
                for ret in ast.walk(node):
                    if isinstance(ret, ast.Return) and ret.value is not None:
                        codes |= ints_in(ret.value)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "exit" \
                    and node.args:
                codes |= ints_in(node.args[0])
    return codes


def codes_in_readme() -> set:
    text = (ROOT / "README.md").read_text()
    section = text.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    return {int(m) for m in re.findall(r"^\| (\d+) \|", section, re.MULTILINE)}


def test_the_readme_exit_code_table_is_every_code_the_commands_use():
    assert codes_in_code() == codes_in_readme() == {0, 1, 2, 3, 78, 130}


def subcommands(parser: argparse.ArgumentParser, path=()) -> list:
    """(command words, parser) of every leaf subcommand."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += subcommands(sub, path + (name,)) or [(path + (name,), sub)]
    return out


def test_debug_is_accepted_after_every_subcommand():
    commands = subcommands(build_parser())
    assert len(commands) >= 12 and ("models", "install") in [c for c, _ in commands]
    for words, sub in commands:
        assert "--debug" in sub._option_string_actions, words
        required = [a for a in sub._actions if (a.required or not a.option_strings) and a.dest != "help"]
        argv = list(words)
        for action in required:  # fill what the command needs to parse
            argv += ([action.option_strings[0]] if action.option_strings else []) + ["x"] * (action.nargs == "+" or 1)
        args = build_parser().parse_args(argv + ["--debug"])
        assert args.debug is True, words


@pytest.mark.parametrize("argv", [("detect",), ("run", "--model", "m.onnx", "--source", "x", "--conf", "2"),
                                  ("models", "install"), ("health", "--wait", "soon")])
def test_usage_errors_read_edge_error_and_exit_2(argv):
    result = edge(*argv)
    assert result.returncode == 2 and result.stderr.startswith("usage: edge ")
    assert result.stderr.splitlines()[-1].startswith("edge: error: "), result.stderr


def test_log_lines_carry_their_level():
    def line(level, formatter=Formatter()):
        return formatter.format(logging.LogRecord("edge", level, __file__, 1, "cam: %s", ("down",), None))

    assert (line(logging.ERROR), line(logging.WARNING), line(logging.INFO)) == \
        ("edge: error: cam: down", "edge: warning: cam: down", "edge: cam: down")
    assert line(logging.WARNING, JournalFormatter()) == "<4>edge: warning: cam: down"


def test_nothing_in_the_cli_or_service_writes_to_stderr_but_the_logger():
    """Prints to stderr would escape the one format; messages must not repeat the level the formatter adds."""
    for path in sorted((ROOT / "edge" / "cli").glob("*.py")) + sorted((ROOT / "edge" / "service").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and any(isinstance(n, ast.Attribute) and n.attr == "stderr" for n in
                                                  [node.func.value if isinstance(node.func, ast.Attribute) and
                                                   node.func.attr == "write" else None]
                                                  + [k.value for k in node.keywords if k.arg == "file"]):
                pytest.fail(f"{path.name}:{node.lineno} writes to stderr; log instead")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("error", "warning") and node.args and isinstance(node.args[0], ast.Constant):
                assert not str(node.args[0].value).startswith(("error", "warning")), f"{path.name}:{node.lineno}"
