"""Every command in the docs is exercised: run here, checked against the code, or run by a test.

``doc_commands`` finds the commands (fenced shell blocks and inline spans of README.md, docs/,
bench/, deploy/ and libs/ pages) and names each one's kind; each kind has its proof:

- ``gmv``: the subcommand path and every option exist in the real typer app; a command from a
  block also parses as written; the safe ones (migrations, schemas, rebuild, rotate, repair)
  run in process against a fresh SQLite database.
- ``make``: the target has a ``##`` help line in the Makefile and ``make help`` lists it.
- ``deploy-local``: the script exists, is executable, answers ``--help`` and knows the
  subcommand; ``env`` and ``url`` run; stop and start are run by the outage tests.
- ``kafka-cli``: the tool is one the script knows, every flag is in the tool's own ``--help``,
  and a test (``RUN_BY_TEST``) runs that tool on the broker.
- ``readme-tour``: the line is in the block tests/cli/test_dev.py runs against ``gmv dev``;
  any other ``curl`` fails.
- ``kubernetes``, ``docker``: cannot run here; every file, namespace, object, service and flag
  they name matches deploy/k8s/ and deploy/compose/ (which tests/deploy/test_manifests.py
  checks against the code).
- ``run`` (text tools, ``python -c``/``-m``) and ``pytest`` (with ``--collect-only``) run as
  written; ``mariadb``: flags in the program's ``--help``, the client lines run against the
  local server; ``python-script`` (benchmarks, minutes long): flags the script declares and
  a test that runs it; ``local-data``: ``rm`` only of the scripts' data folders; ``shell``:
  ``export`` sets real settings to values they accept.

Anything else is ``unknown`` and fails, naming the page, line and command. The last tests feed
broken commands through the same checks to show that each kind can fail.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer.main
import yaml
from doc_commands import (
    ROOT,
    SUBSTITUTION,
    TOUR,
    Invocation,
    all_invocations,
    doc_paths,
    invocations_of_markdown,
    is_placeholder,
    kind_of,
)
from sqlalchemy.engine import make_url
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from gmv_cli.main import app
from gmv_cli.runner import SERVICES
from gmv_common.db import migrate
from gmv_common.settings import Settings

INVOCATIONS = all_invocations()
GMV = typer.main.get_command(app)
SETTING_NAMES = frozenset(name.upper() for name in Settings.model_fields)
K8S_DIR = ROOT / "deploy" / "k8s"
COMPOSE_FILE = ROOT / "deploy" / "compose" / "compose.yaml"
DOCKERFILE = ROOT / "deploy" / "container" / "Dockerfile"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
SUBPROCESS_TIMEOUT = 60
COLLECT_ONLY = ("--collect-only", "-q", "-p", "no:cacheprovider")

TEST_DEV = (
    "tests/cli/test_dev.py::test_dev_mode_syncs_the_demo_binding_and_stops_on_ctrl_c"
)
REPLAY = (
    "tests/e2e/test_replay.py::"
    "test_replaying_every_topic_from_offset_zero_leaves_the_database_unchanged"
)
BROKER_OUTAGE = (
    "tests/e2e/test_broker_outage.py::"
    "test_sync_requests_during_broker_outage_all_complete_once_after_it"
)
DATABASE_OUTAGE = (
    "tests/e2e/test_database_outage.py::"
    "test_database_restart_answers_503_then_recovers_without_restarts"
)
KAFKA_RECIPES = (
    "tests/docs/test_kafka_recipes.py::"
    "test_kafka_cli_recipes_of_the_operations_guide_run_on_the_local_broker"
)
# Commands that stop shared servers or need the broker's data, and the test that runs each
# as the docs write it (program and first argument).
RUN_BY_TEST: dict[tuple[str, ...], str] = {
    ("deploy/local/kafka", "stop"): BROKER_OUTAGE,
    ("deploy/local/kafka", "start"): BROKER_OUTAGE,
    ("deploy/local/mariadb", "stop"): DATABASE_OUTAGE,
    ("deploy/local/mariadb", "start"): DATABASE_OUTAGE,
    ("deploy/local/kafka-cli", "consumer-groups"): REPLAY,
    ("deploy/local/kafka-cli", "topics"): KAFKA_RECIPES,
    ("deploy/local/kafka-cli", "console-producer"): KAFKA_RECIPES,
    ("deploy/local/kafka-cli", "console-consumer"): KAFKA_RECIPES,
    ("deploy/local/kafka-cli", "get-offsets"): KAFKA_RECIPES,
    ("python", "bench/run_all.py"): (
        "tests/bench/test_report.py::"
        "test_runner_kills_a_benchmark_that_runs_past_the_timeout"
    ),
    ("python", "bench/report.py"): (
        "tests/bench/test_report.py::"
        "test_report_puts_each_headline_figure_next_to_its_goal"
    ),
}
# gmv commands that only read or write the database they are given: run for real.
SAFE_GMV_COMMANDS = frozenset(
    {
        ("db", "upgrade"),
        ("db", "current"),
        ("events", "schemas"),
        ("options", "rebuild"),
        ("keys", "rotate"),
        ("repair", "advertiser-info"),
        ("version",),
    }
)
# Scripts whose subcommand only prints: run for real.
PRINTING_SCRIPTS = frozenset({("deploy/local/env",), ("deploy/local/mariadb", "url")})
KUBECTL_FLAGS = {
    "apply": frozenset({"-f", "-k", "-n"}),
    "wait": frozenset({"--for", "--timeout", "-n"}),
    "scale": frozenset({"--replicas", "-n"}),
}
KUBECTL_KINDS = {"deployment": "Deployment", "job": "Job"}
WAIT_CONDITIONS = {
    "Job": frozenset({"complete"}),
    "Deployment": frozenset({"available"}),
}
COMPOSE_VERBS = {
    "up": frozenset({"--build", "-d", "--detach", "--wait"}),
    "down": frozenset(),
    "stop": frozenset(),
    "start": frozenset(),
    "restart": frozenset(),
    "logs": frozenset({"-f", "--follow"}),
    "ps": frozenset(),
    "config": frozenset(),
}
COMPOSE_GLOBAL_FLAGS = frozenset({"-f", "--file", "--env-file", "-p", "--project-name"})


@dataclass(frozen=True)
class Workdir:
    """Where commands run for real: an empty folder and a migrated SQLite database in it."""

    path: Path
    database_url: str


# Running things


@dataclass(frozen=True)
class Ran:
    returncode: int
    output: str


@functools.cache
def run(
    argv: tuple[str, ...],
    cwd: Path = ROOT,
    stdin: str = "",
    without: tuple[str, ...] = (),
) -> Ran:
    """Run once per distinct call (helps are asked by many commands); output is stdout+stderr.

    ``without`` names environment variables to unset, so a script shows its defaults.
    """
    env = {key: value for key, value in os.environ.items() if key not in without}
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Ran(-1, f"{shlex.join(argv)} did not run: {exc}")
    return Ran(done.returncode, done.stdout + done.stderr)


def script_help(program: str) -> Ran:
    return run((str(ROOT / program), "--help"), without=("GMV_LOCAL_DIR",))


def kafka_tool_help(tool: str) -> Ran:
    return run((str(ROOT / "deploy/local/kafka-cli"), tool, "--help"))


def make_help() -> Ran:
    return run(("make", "--no-print-directory", "help"))


def program_help(program: str) -> Ran:
    return run((program, "--help"))


def long_flags(help_text: str) -> set[str]:
    """``--name`` options listed at the start of a help line (``-x, --name`` too)."""
    return set(re.findall(r"(?m)^\s*(?:-\w,\s+)?(--[\w.-]+)", help_text))


def short_flags(help_text: str) -> set[str]:
    return set(re.findall(r"(?m)^\s*(-\w),", help_text))


def flag_name(word: str) -> str:
    return word.split("=", 1)[0]


def warm_up(invocations: list[Invocation]) -> None:
    """Ask every slow help at once (JVM and interpreter starts) before the checks read them."""
    calls: list[Callable[[], Ran]] = [make_help]
    for invocation in invocations:
        kind, command = kind_of(invocation), invocation.command
        if kind == "kafka-cli" and len(command) > 1 and not is_placeholder(command[1]):
            calls.append(functools.partial(kafka_tool_help, command[1]))
        elif kind == "pytest":
            calls.append(functools.partial(collect, command[1:]))
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda call: call(), calls))


def collect(args: tuple[str, ...]) -> Ran:
    """A documented pytest command, collecting only: it must select tests that exist."""
    return run((sys.executable, "-m", "pytest", *args, *COLLECT_ONLY))


# Tests named in the checks


def node_problems(node_id: str) -> list[str]:
    """Whether ``path::function`` (or ``path::Class::function``) names a test that exists."""
    path, *names = node_id.split("::")
    source = ROOT / path
    if not source.is_file():
        return [f"{node_id}: no file {path}"]
    scope: list[ast.stmt] = ast.parse(source.read_text()).body
    for name in names:
        found = [
            node
            for node in scope
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node.name == name
        ]
        if not found:
            return [f"{node_id}: no test {name} in {path}"]
        scope = found[0].body
    return []


@functools.cache
def tour_module() -> ModuleType:
    """tests/cli/test_dev.py, which runs the README's curl tour against ``gmv dev``."""
    spec = importlib.util.spec_from_file_location(
        "docs_tour_runner", ROOT / "tests" / "cli" / "test_dev.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def squeezed(text: str) -> str:
    return " ".join(text.replace("\\\n", " ").split())


# Checks by kind: each returns the problems it found


def tour_problems(invocation: Invocation, _: Workdir) -> list[str]:
    module = tour_module()
    problems = node_problems(TEST_DEV)
    if invocation.program == "export":
        source = Path(module.__file__ or "").read_text()
        names = [word.split("=", 1)[0] for word in invocation.command[1:]]
        problems += [
            f"{TEST_DEV.split('::')[0]} does not set {name} for the tour"
            for name in names
            if f'"{name}":' not in source
        ]
    elif squeezed(invocation.source) not in squeezed(module.readme_tour()):
        problems.append(f"not in the tour that {TEST_DEV} runs")
    return problems


def resolve_gmv(args: list[str]) -> tuple[Any, list[str], list[str], list[str]]:
    """(command, subcommand path, remaining words, problems) of ``gmv ARGS``."""
    command: Any = GMV
    path: list[str] = []
    while isinstance(command, TyperGroup) and args and not args[0].startswith("-"):
        if is_placeholder(args[0]):
            return command, path, args, []
        name, args = args[0], args[1:]
        if name not in command.commands:
            known = ", ".join(sorted(command.commands))
            return (
                command,
                path,
                args,
                [f"gmv {' '.join(path)} has no {name!r} ({known})"],
            )
        command, path = command.commands[name], [*path, name]
    return command, path, args, []


def gmv_argument_problems(command: Any, path: list[str], args: list[str]) -> list[str]:
    options = {
        opt: param
        for param in command.params
        if isinstance(param, TyperOption)
        for opt in (*param.opts, *param.secondary_opts)
    }
    positional: list[str] = []
    problems = []
    words = iter(args)
    for word in words:
        if not word.startswith("-") or word == SUBSTITUTION:
            positional.append(word)
            continue
        param = options.get(flag_name(word))
        if param is None and word != "--help":
            problems.append(f"gmv {' '.join(path)} has no option {flag_name(word)}")
        elif param is not None and not param.is_flag and "=" not in word:
            next(words, None)
    arguments = [
        param for param in command.params if not isinstance(param, TyperOption)
    ]
    if isinstance(command, TyperGroup) and positional:
        problems.append(f"gmv {' '.join(path)} has no subcommand {positional[0]!r}")
    elif len(positional) > len(arguments):
        problems.append(f"gmv {' '.join(path)} takes {len(arguments)} argument(s)")
    service = positional[0] if path == ["serve"] and positional else "…"
    if not is_placeholder(service) and service not in SERVICES:
        problems.append(f"gmv serve: {positional[0]!r} is not one of {SERVICES}")
    return problems


def gmv_parse_problems(command: Any, path: list[str], args: list[str]) -> list[str]:
    """A command from a block must parse exactly as written (types, required options)."""
    try:
        command.make_context(" ".join(["gmv", *path]), list(args))
    except Exception as exc:
        return [f"gmv {' '.join(path)} does not parse: {exc}"]
    return []


def gmv_run_problems(path: list[str], args: list[str], workdir: Workdir) -> list[str]:
    environment = {"DATABASE_URL": workdir.database_url, "LOG_LEVEL": "WARNING"}
    with contextlib.chdir(workdir.path):
        result = CliRunner().invoke(app, [*path, *args], env=environment)
    if result.exit_code != 0:
        return [
            f"exited {result.exit_code} against a fresh database: {result.output}"
            f"{result.exception!r}"
        ]
    return []


def gmv_problems(invocation: Invocation, workdir: Workdir) -> list[str]:
    command, path, args, problems = resolve_gmv(list(invocation.command[1:]))
    if problems:
        return problems
    problems = gmv_argument_problems(command, path, args)
    if not invocation.inline:
        problems += gmv_parse_problems(command, path, args)
    placeholders = any(is_placeholder(word) for word in args)
    if not problems and tuple(path) in SAFE_GMV_COMMANDS and not placeholders:
        problems += gmv_run_problems(path, args, workdir)
    return problems


def make_problems(invocation: Invocation, _: Workdir) -> list[str]:
    makefile = (ROOT / "Makefile").read_text()
    documented = set(re.findall(r"(?m)^([a-zA-Z_-]+):.*?## ", makefile))
    listed = make_help()
    if listed.returncode != 0:
        return [f"make help failed: {listed.output}"]
    listed_targets = {
        line.split()[0] for line in ANSI.sub("", listed.output).splitlines() if line
    }
    targets = [
        word
        for word in invocation.command[1:]
        if not word.startswith("-") and "=" not in word
    ] or ["help"]
    problems = []
    for target in targets:
        if target not in documented:
            problems.append(f"the Makefile has no target {target!r} with a ## line")
        elif target not in listed_targets:
            problems.append(f"make help does not list {target!r}")
    return problems


def script_problems(program: str) -> list[str]:
    path = ROOT / program
    if not path.is_file():
        return [f"no script {program}"]
    if not os.access(path, os.X_OK):
        return [f"{program} is not executable"]
    return []


def run_by_test_key(invocation: Invocation) -> tuple[str, ...]:
    """(program, first argument); any Python interpreter is ``python``."""
    program = invocation.program
    if program.removeprefix(".venv/bin/") in ("python", "python3"):
        program = "python"
    return (program, *invocation.command[1:2])


def run_by_test_problems(invocation: Invocation) -> list[str]:
    node_id = RUN_BY_TEST.get(run_by_test_key(invocation))
    return [] if node_id is None else node_problems(node_id)


def deploy_local_problems(invocation: Invocation, _: Workdir) -> list[str]:
    program, args = invocation.program, invocation.command[1:]
    problems = script_problems(program)
    if problems:
        return problems
    shown = script_help(program)
    if shown.returncode != 0:
        return [f"{program} --help exited {shown.returncode}: {shown.output}"]
    usage = re.search(r"Usage: \S+ ([\w|]+)\s*$", shown.output, re.MULTILINE)
    choices = set(usage[1].split("|")) if usage else set()
    subcommand = args[0] if args and args[0] != "--help" else "…"
    if not is_placeholder(subcommand) and subcommand not in choices:
        problems.append(f"{program} has no subcommand {args[0]!r} ({choices})")
    if not problems and (program, *args) in PRINTING_SCRIPTS:
        ran = run((str(ROOT / program), *args))
        if ran.returncode != 0:
            problems.append(f"exited {ran.returncode}: {ran.output}")
    return problems + run_by_test_problems(invocation)


def kafka_tools() -> set[str]:
    shown = script_help("deploy/local/kafka-cli")
    tools_section = shown.output.split("Tools:", 1)[-1].split("\n\n", 1)[0]
    return set(re.findall(r"(?m)^  (\S+)\s+\S+$", tools_section))


def kafka_cli_problems(invocation: Invocation, _: Workdir) -> list[str]:
    problems = script_problems(invocation.program)
    args = invocation.command[1:]
    if problems or not args or args[0] == "--help" or is_placeholder(args[0]):
        return problems
    tool = args[0]
    if tool not in kafka_tools():
        return [f"kafka-cli has no tool {tool!r} ({sorted(kafka_tools())})"]
    flags = long_flags(kafka_tool_help(tool).output)
    if "--help" not in flags:
        return [f"kafka-cli {tool} --help listed no options (run `make up`)"]
    problems += [
        f"kafka-cli {tool} has no option {flag_name(word)}"
        for word in args[1:]
        if word.startswith("--") and flag_name(word) not in flags
    ]
    if (invocation.program, tool) not in RUN_BY_TEST:
        problems.append(f"no test runs kafka-cli {tool}; add one to RUN_BY_TEST")
    return problems + run_by_test_problems(invocation)


def curl_problems(invocation: Invocation, _: Workdir) -> list[str]:
    return [
        f"curl outside the README's curl tour ({TOUR[1]!r}): add it to the tour, "
        f"which {TEST_DEV} runs, or to a test of its own"
    ]


def shell_problems(invocation: Invocation, _: Workdir) -> list[str]:
    command = invocation.command
    if not command:
        return []
    if command[0] == "eval":
        return [] if command[1:] == (SUBSTITUTION,) else ["eval of anything but $(…)"]
    problems = []
    for word in command[1:]:
        name, _, value = word.partition("=")
        if name not in SETTING_NAMES:
            problems.append(f"export {name}: not a setting of gmv_common.settings")
        elif "$" not in value:
            try:
                Settings(_env_file=None, **{name.lower(): value})  # type: ignore[call-arg]
            except ValueError as exc:
                problems.append(f"{name}={value!r} is refused: {exc}")
    return problems


def run_problems(invocation: Invocation, workdir: Workdir) -> list[str]:
    """Text tools and ``python -c``/``-m`` lines, run as written with no input."""
    argv = list(invocation.command)
    if argv[0].removeprefix(".venv/bin/") in ("python", "python3"):
        argv[0] = sys.executable
    ran = run(tuple(argv), cwd=workdir.path)
    if ran.returncode != 0:
        return [f"exited {ran.returncode}: {ran.output}"]
    return []


def pytest_problems(invocation: Invocation, _: Workdir) -> list[str]:
    collected = collect(invocation.command[1:])
    count = re.search(r"(\d+) tests? collected", collected.output)
    if collected.returncode != 0 or count is None or int(count[1]) == 0:
        return [f"collects no test (exit {collected.returncode}): {collected.output}"]
    return []


def argparse_flags(script: Path) -> set[str]:
    """The ``--flags`` a script declares with ``add_argument`` (read, not imported)."""
    return {
        str(argument.value)
        for node in ast.walk(ast.parse(script.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "add_argument"
        for argument in node.args
        if isinstance(argument, ast.Constant) and str(argument.value).startswith("-")
    } | {"--help"}


def python_script_problems(invocation: Invocation, _: Workdir) -> list[str]:
    """Scripts of their own (benchmarks) run for minutes: their options must exist, and
    a test runs each one's entry point."""
    script = invocation.command[1]
    if not (ROOT / script).is_file():
        return [f"no script {script}"]
    flags = argparse_flags(ROOT / script)
    problems = [
        f"{script} has no option {flag_name(word)}"
        for word in invocation.command[2:]
        if word.startswith("--") and flag_name(word) not in flags
    ]
    if run_by_test_key(invocation) not in RUN_BY_TEST:
        problems.append(f"no test runs {script}; add one to RUN_BY_TEST")
    return problems + run_by_test_problems(invocation)


def mariadb_problems(invocation: Invocation, _: Workdir) -> list[str]:
    program, args = invocation.program, invocation.command[1:]
    shown = program_help(program)
    if shown.returncode != 0:
        return [f"{program} --help exited {shown.returncode}: {shown.output}"]
    long_known, short_known = long_flags(shown.output), short_flags(shown.output)
    problems = [
        f"{program} has no option {word}"
        for word in args
        if (word.startswith("--") and flag_name(word) not in long_known)
        or (re.match(r"^-\w", word) and word[:2] not in short_known)
    ]
    if problems or program != "mariadb":
        return problems
    ran = run((program, *on_suite_server(args)), stdin="SELECT 1;\n")
    return [] if ran.returncode == 0 else [f"exited {ran.returncode}: {ran.output}"]


DEFAULT_SERVER_URL = "mysql+aiomysql://gmv:gmv@127.0.0.1:13306/gmv"


def on_suite_server(args: tuple[str, ...]) -> tuple[str, ...]:
    """The client line aimed at the suite's server: the docs name the default port, and
    ``GMV_MARIADB_PORT`` may have moved it (the URL in ``GMV_TEST_DATABASE_URL`` says where)."""
    port = make_url(os.environ.get("GMV_TEST_DATABASE_URL", DEFAULT_SERVER_URL)).port
    aimed: list[str] = []
    follows_flag = False
    for word in args:
        if follows_flag and word.isdigit():
            word = str(port)
        word = re.sub(r"^(-P|--port=)\d+$", rf"\g<1>{port}", word)
        follows_flag = word in ("-P", "--port")
        aimed.append(word)
    return tuple(aimed)


def data_directories() -> set[Path]:
    """The data folders the local server scripts name in their help."""
    folders = set()
    for script in ("deploy/local/mariadb", "deploy/local/kafka"):
        for found in re.findall(
            r"data in (\S+?)\.?(?:\s|$)", script_help(script).output
        ):
            folders.add(Path(found).resolve())
    return folders


def local_data_problems(invocation: Invocation, _: Workdir) -> list[str]:
    words = invocation.command[1:]
    problems = [
        f"rm {word}: only -r and -f are expected"
        for word in words
        if word.startswith("-") and not set(word[1:]) <= {"r", "f"}
    ]
    return problems + [
        f"rm {word}: not a data folder of deploy/local/mariadb or deploy/local/kafka"
        for word in words
        if not word.startswith("-")
        and (ROOT / word).resolve() not in data_directories()
    ]


# Deployment files


def k8s_documents() -> list[dict[str, Any]]:
    return [
        document
        for path in sorted(K8S_DIR.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        (K8S_DIR / "kustomization.yaml").read_text()
    )
    return loaded


def kubectl_words(args: tuple[str, ...]) -> Iterator[tuple[str, str | None]]:
    """(flag, value) pairs and (word, None) for positional words."""
    words = iter(args)
    for word in words:
        if word in ("-f", "-k", "-n", "--namespace"):
            yield ("-n" if word == "--namespace" else word), next(words, "")
        elif word.startswith("-"):
            name, _, value = word.partition("=")
            yield name, value
        else:
            yield word, None


def kubectl_object_problems(
    kind_name: str, namespace: str | None, flags: dict[str, list[str]]
) -> list[str]:
    kind_alias, _, name = kind_name.partition("/")
    kind = KUBECTL_KINDS.get(kind_alias)
    if kind is None or not name:
        return [f"{kind_name}: expected deployment/NAME or job/NAME"]
    objects = {
        doc["metadata"]["name"]: doc for doc in k8s_documents() if doc["kind"] == kind
    }
    if name not in objects:
        return [f"no {kind} {name!r} in deploy/k8s ({sorted(objects)})"]
    problems = []
    if namespace != objects[name]["metadata"].get("namespace"):
        problems.append(f"{kind} {name} is in namespace {objects[name]['metadata']}")
    for condition in flags.get("--for", []):
        wanted = condition.removeprefix("condition=")
        if wanted not in WAIT_CONDITIONS[kind]:
            problems.append(f"a {kind} has no condition {wanted!r}")
    autoscaled = {
        doc["spec"]["scaleTargetRef"]["name"]: doc["spec"]["maxReplicas"]
        for doc in k8s_documents()
        if doc["kind"] == "HorizontalPodAutoscaler"
    }
    for replicas in flags.get("--replicas", []):
        if not replicas.isdigit() or int(replicas) > autoscaled.get(name, 1_000):
            problems.append(f"--replicas={replicas} for {name}")
    return problems


def kubectl_problems(args: tuple[str, ...]) -> list[str]:
    verbs = [word for word, value in kubectl_words(args) if value is None]
    if not verbs or verbs[0] not in KUBECTL_FLAGS:
        return [f"kubectl {verbs[:1]}: only {sorted(KUBECTL_FLAGS)} are checked here"]
    verb, targets = verbs[0], verbs[1:]
    flags: dict[str, list[str]] = {}
    for flag, value in kubectl_words(args):
        if value is not None:
            flags.setdefault(flag, []).append(value)
    problems = [
        f"kubectl {verb} {flag}: not a flag this check knows"
        for flag in flags
        if flag not in KUBECTL_FLAGS[verb]
    ]
    resources = kustomization()["resources"]
    for manifest in flags.get("-f", []):
        path = Path(manifest)
        if path.parent != K8S_DIR.relative_to(ROOT) or path.name not in resources:
            problems.append(
                f"-f {manifest}: not a manifest of deploy/k8s/kustomization"
            )
        elif not (ROOT / path).is_file():
            problems.append(f"-f {manifest}: no such file")
    for folder in flags.get("-k", []):
        if not (ROOT / folder / "kustomization.yaml").is_file():
            problems.append(f"-k {folder}: no kustomization.yaml there")
    namespace = next(iter(flags.get("-n", [])), None)
    if namespace is not None and namespace != kustomization()["namespace"]:
        problems.append(
            f"-n {namespace}: the manifests use {kustomization()['namespace']}"
        )
    for target in targets:
        problems += kubectl_object_problems(target, namespace, flags)
    return problems


def kustomize_problems(args: tuple[str, ...]) -> list[str]:
    if len(args) != 2 or args[0] != "build":
        return ["only `kustomize build DIR` is checked here"]
    if not (ROOT / args[1] / "kustomization.yaml").is_file():
        return [f"{args[1]}: no kustomization.yaml there"]
    return []


def kubernetes_problems(invocation: Invocation, _: Workdir) -> list[str]:
    if invocation.program == "kustomize":
        return kustomize_problems(invocation.command[1:])
    return kubectl_problems(invocation.command[1:])


def compose_problems(args: tuple[str, ...]) -> list[str]:
    words = list(args)
    files, problems = [], []
    while words and words[0].startswith("-"):
        flag = flag_name(words.pop(0))
        if flag not in COMPOSE_GLOBAL_FLAGS:
            return [f"docker compose {flag}: not a flag this check knows"]
        value = words.pop(0) if words else ""
        if flag in ("-f", "--file"):
            files.append(value)
        elif flag == "--env-file" and not (
            (ROOT / value).is_file()
            or (ROOT / value).with_name("example.env").is_file()
        ):
            problems.append(f"--env-file {value}: neither it nor example.env beside it")
    if files != [COMPOSE_FILE.relative_to(ROOT).as_posix()]:
        return [
            f"docker compose needs -f {COMPOSE_FILE.relative_to(ROOT)} (there is no "
            "compose file at the repository root)"
        ]
    if not words or words[0] not in COMPOSE_VERBS:
        return [f"docker compose {words[:1]}: only {sorted(COMPOSE_VERBS)} are checked"]
    verb, rest = words[0], words[1:]
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    for word in rest:
        if word.startswith("-") and flag_name(word) not in COMPOSE_VERBS[verb]:
            problems.append(
                f"docker compose {verb} {word}: not a flag this check knows"
            )
        elif not word.startswith("-") and word not in services:
            problems.append(f"no compose service {word!r} ({sorted(services)})")
    return problems


def deployment_images() -> set[str]:
    """The image names the manifests and the compose file run."""
    images = {
        container["image"]
        for document in k8s_documents()
        if document["kind"] in ("Deployment", "Job")
        for container in document["spec"]["template"]["spec"]["containers"]
    }
    images |= {
        f"{image['name']}:{image['newTag']}" for image in kustomization()["images"]
    }
    default = re.search(r"\$\{GMV_IMAGE:-([^}]+)\}", COMPOSE_FILE.read_text())
    return images | ({default[1]} if default else set())


def docker_build_problems(args: tuple[str, ...]) -> list[str]:
    flags = dict(zip(args[::2], args[1::2], strict=False))
    context = args[-1] if len(args) % 2 else ""
    problems = [
        f"docker build {flag}: unknown" for flag in flags if flag not in ("-f", "-t")
    ]
    if flags.get("-f") != DOCKERFILE.relative_to(ROOT).as_posix():
        problems.append(f"docker build needs -f {DOCKERFILE.relative_to(ROOT)}")
    if context != ".":
        problems.append("the build context is the repository root (`.`)")
    if flags.get("-t") not in deployment_images():
        problems.append(f"-t {flags.get('-t')}: no deployment file runs that image")
    return problems


def docker_problems(invocation: Invocation, _: Workdir) -> list[str]:
    verb = invocation.command[1] if len(invocation.command) > 1 else ""
    args = invocation.command[2:]
    if verb == "compose":
        return compose_problems(args)
    if verb == "build":
        return docker_build_problems(args)
    if verb == "push":
        if len(args) == 1 and args[0] in deployment_images():
            return []
        return [
            f"docker push {shlex.join(args)}: not an image the deployment files run"
        ]
    return [f"docker {verb}: only compose, build and push are checked here"]


def unknown_problems(invocation: Invocation, _: Workdir) -> list[str]:
    return [
        f"no check covers {invocation.program!r}: run it in a test and teach "
        "tests/docs/test_doc_commands.py its kind"
    ]


CHECKS: dict[str, Callable[[Invocation, Workdir], list[str]]] = {
    "readme-tour": tour_problems,
    "gmv": gmv_problems,
    "make": make_problems,
    "deploy-local": deploy_local_problems,
    "kafka-cli": kafka_cli_problems,
    "curl": curl_problems,
    "shell": shell_problems,
    "run": run_problems,
    "pytest": pytest_problems,
    "python-script": python_script_problems,
    "mariadb": mariadb_problems,
    "local-data": local_data_problems,
    "kubernetes": kubernetes_problems,
    "docker": docker_problems,
    "unknown": unknown_problems,
}


def problems_of(invocation: Invocation, workdir: Workdir) -> list[str]:
    return CHECKS[kind_of(invocation)](invocation, workdir)


def describe(invocation: Invocation, problems: list[str]) -> str:
    lines = "\n".join(f"  - {problem}" for problem in problems)
    return f"{invocation} ({kind_of(invocation)}) is not exercised:\n{lines}"


# Fixtures


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Workdir:
    path = tmp_path_factory.mktemp("doc-commands")
    url = f"sqlite+aiosqlite:///{path / 'gmv.db'}"
    asyncio.run(migrate.upgrade(url))
    warm_up(INVOCATIONS)
    return Workdir(path, url)


def param(invocation: Invocation) -> Any:
    server = kind_of(invocation) == "mariadb" and invocation.program == "mariadb"
    marks = [pytest.mark.mariadb] if server else []
    return pytest.param(
        invocation, id=f"{invocation.where} {invocation.text[:50]}", marks=marks
    )


# Tests


@pytest.mark.parametrize("invocation", [param(found) for found in INVOCATIONS])
def test_doc_command_is_exercised(invocation: Invocation, workdir: Workdir) -> None:
    problems = problems_of(invocation, workdir)

    assert not problems, describe(invocation, problems)


def test_every_page_with_a_shell_block_yields_commands() -> None:
    pages = {invocation.path for invocation in INVOCATIONS}

    for path in doc_paths():
        relative = path.relative_to(ROOT).as_posix()
        if re.search(r"(?m)^\s*```(sh|bash|console|shell)\s*$", path.read_text()):
            assert relative in pages, f"{relative}: shell blocks but no command found"


def test_every_test_named_as_running_a_doc_command_exists() -> None:
    problems = [
        problem
        for node_id in {*RUN_BY_TEST.values(), TEST_DEV}
        for problem in node_problems(node_id)
    ]

    assert not problems


SAMPLE_PAGE = """# Sample

```sh
$ make up   # start the servers
gmv db upgrade && gmv db current; deploy/local/env || true
printf '%s\\n' 'a|b # not a comment' |
  deploy/local/kafka-cli console-producer \\
    --topic t
NOW=$(date -u +%s)   # or: gmv version
```

```
Partition:0	Offset:0
```

Prose with `gmv serve api-gateway|options-cache` and `gmv repair advertiser-info [--dry-run]`,
`deploy/local/mariadb start\\|stop`, a file `deploy/k8s/README.md` and a name `gmv`.
"""


def test_commands_are_split_the_way_a_shell_runs_them() -> None:
    found = invocations_of_markdown("docs/sample.md", SAMPLE_PAGE)

    assert [(invocation.line, invocation.argv) for invocation in found] == [
        (4, ("make", "up")),
        (5, ("gmv", "db", "upgrade")),
        (5, ("gmv", "db", "current")),
        (5, ("deploy/local/env",)),
        (5, ("true",)),
        (6, ("printf", "%s\\n", "a|b # not a comment")),
        (6, ("deploy/local/kafka-cli", "console-producer", "--topic", "t")),
        (9, ("gmv", "version")),
        (9, ("NOW=$(…)",)),
        (9, ("date", "-u", "+%s")),
        (16, ("gmv", "serve", "api-gateway")),
        (16, ("gmv", "serve", "options-cache")),
        (16, ("gmv", "repair", "advertiser-info", "--dry-run")),
        (17, ("deploy/local/mariadb", "start")),
        (17, ("deploy/local/mariadb", "stop")),
    ]


@pytest.mark.parametrize(
    ("page", "markdown", "expected"),
    [
        ("docs/broken.md", "```sh\ngmv db upgrade --bogus\n```", "no option --bogus"),
        ("docs/broken.md", "Run `gmv db frobnicate`.", "has no 'frobnicate'"),
        ("docs/broken.md", "```sh\ngmv serve api-gatewey\n```", "is not one of"),
        ("docs/broken.md", "```sh\ngmv serve api-gateway --port x\n```", "not parse"),
        ("docs/broken.md", "Run `make deploy`.", "no target 'deploy'"),
        ("docs/broken.md", "Run `deploy/local/postgres start`.", "no script"),
        ("docs/broken.md", "Run `deploy/local/kafka restart`.", "no subcommand"),
        ("docs/broken.md", "```sh\ndeploy/local/kafka-cli nothing\n```", "no tool"),
        (
            "docs/broken.md",
            "```sh\ndeploy/local/kafka-cli topics --lsit\n```",
            "has no option --lsit",
        ),
        ("docs/broken.md", "```sh\ncurl -fsS $GMV/healthz\n```", "outside the README"),
        ("README.md", "## Curl tour\n```bash\ncurl -fsS $GMV/nothing\n```", "not in"),
        (
            "docs/broken.md",
            "```sh\nkubectl apply -f deploy/k8s/missing.yaml\n```",
            "not a manifest",
        ),
        (
            "docs/broken.md",
            "```sh\nkubectl -n gmv scale deployment/option-cache --replicas=0\n```",
            "no Deployment 'option-cache'",
        ),
        (
            "docs/broken.md",
            "```sh\nkubectl -n gmv rollout restart deployment/api-gateway\n```",
            "are checked here",
        ),
        ("docs/broken.md", "```sh\ndocker compose stop options-cache\n```", "needs -f"),
        (
            "docs/broken.md",
            "```sh\ndocker compose -f deploy/compose/compose.yaml stop cache\n```",
            "no compose service 'cache'",
        ),
        ("docs/broken.md", "```sh\ndocker build -t gmv .\n```", "needs -f"),
        ("docs/broken.md", "```sh\ndocker push gmv:latest\n```", "not an image"),
        ("docs/broken.md", "```sh\nkustomize build deploy\n```", "no kustomization"),
        ("docs/broken.md", "```sh\nexport DATABSE_URL=x\n```", "not a setting"),
        ("docs/broken.md", "```sh\nexport BUS_BACKEND=rabbit\n```", "is refused"),
        ("docs/broken.md", "```sh\nsed -E 's/(/x/'\n```", "exited"),
        (
            "docs/broken.md",
            "```sh\n.venv/bin/python bench/run_all.py --jobs 2\n```",
            "has no option --jobs",
        ),
        (
            "docs/broken.md",
            "Back up with `mariadb-dump --single-transactions gmv`.",
            "has no option --single-transactions",
        ),
        ("docs/broken.md", "```sh\nrm -rf .local\n```", "not a data folder"),
        ("docs/broken.md", "```sh\nfrobnicate --all\n```", "no check covers"),
    ],
)
def test_a_wrong_command_fails_naming_its_page_line_and_text(
    page: str, markdown: str, expected: str, workdir: Workdir
) -> None:
    [invocation] = invocations_of_markdown(page, markdown)

    problems = problems_of(invocation, workdir)

    assert problems
    message = describe(invocation, problems)
    assert f"{invocation.where}: `{invocation.text}`" in message
    assert expected in message


@pytest.mark.parametrize(
    ("written", "aimed"),
    [
        (
            ("-h127.0.0.1", "-P13306", "-ugmv", "gmv"),
            ("-h127.0.0.1", "-P23306", "-ugmv", "gmv"),
        ),
        (("--port=13306", "gmv"), ("--port=23306", "gmv")),
        (
            ("-P", "13306", "--port", "13306", "gmv"),
            ("-P", "23306", "--port", "23306", "gmv"),
        ),
        (("--defaults-file=my.cnf", "13306"), ("--defaults-file=my.cnf", "13306")),
    ],
)
def test_a_client_line_is_aimed_at_the_port_the_suite_server_listens_on(
    written: tuple[str, ...], aimed: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "GMV_TEST_DATABASE_URL", "mysql+aiomysql://gmv:gmv@127.0.0.1:23306/gmv"
    )

    assert on_suite_server(written) == aimed
