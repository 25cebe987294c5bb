"""Run every ``bench/bench_*.py``, collect their results, write the report (``make bench``).

Each benchmark runs in its own Python process, one after another (they measure time, and
the machine is small), with its output in ``results/logs/<name>.log``. A benchmark must exit 0
and write ``results/<name>.json`` during its run (``bench_foo.py`` writes ``foo.json``);
otherwise it counts as failed. Then ``results/summary.json`` gathers every run and its
headline entries, and ``report.py`` writes ``results/REPORT.md`` and ``results/headline.png``.

Exit status: 0 when every benchmark ran, 1 when any failed to run. A missed goal is reported,
not an error.

    .venv/bin/python bench/run_all.py [--only options_build] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from report import headline_of, write_report

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_TIMEOUT_SECONDS = 1800.0
LOG_TAIL_LINES = 20


def discover(bench_dir: Path, only: list[str] | None = None) -> list[Path]:
    scripts = sorted(bench_dir.glob("bench_*.py"))
    if only:
        scripts = [script for script in scripts if benchmark_name(script) in only]
    return scripts


def benchmark_name(script: Path) -> str:
    return script.stem.removeprefix("bench_")


def last_lines(path: Path, count: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-count:])


def run_one(script: Path, results_dir: Path, timeout: float) -> dict[str, Any]:
    """Run one benchmark to completion; describe the run and what it wrote."""
    name = benchmark_name(script)
    results_file = results_dir / f"{name}.json"
    log_file = results_dir / "logs" / f"{name}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    # A results file older than the run is a previous run's: it does not count.
    started_wall = time.time() - 1.0
    started = time.perf_counter()
    run: dict[str, Any] = {
        "name": name,
        "script": script.name,
        "results_file": None,
        "log_file": str(log_file.relative_to(results_dir)),
        "headline": [],
        "error": None,
    }
    with log_file.open("w") as log:
        try:
            completed = subprocess.run(
                [sys.executable, str(script)],
                cwd=script.parent.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
            run["exit_code"] = completed.returncode
        except subprocess.TimeoutExpired:
            run["exit_code"] = None
            run["error"] = f"timed out after {timeout:.0f} s"
    run["seconds"] = round(time.perf_counter() - started, 2)

    fresh = results_file.exists() and results_file.stat().st_mtime >= started_wall
    if run["error"] is None and run["exit_code"] != 0:
        tail = last_lines(log_file, 1)
        run["error"] = f"exit code {run['exit_code']}" + (f": {tail}" if tail else "")
    elif run["error"] is None and not fresh:
        run["error"] = f"no {results_file.name} written"
    elif run["error"] is None:
        try:
            results = json.loads(results_file.read_text())
        except json.JSONDecodeError as exc:
            run["error"] = f"{results_file.name} is not JSON: {exc}"
        else:
            run["results_file"] = str(results_file.relative_to(results_dir))
            run["headline"] = headline_of(results)
    run["status"] = "ok" if run["error"] is None else "failed"
    return run


def machine() -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpus": os.cpu_count(),
        "commit": commit,
    }


def run_all(scripts: list[Path], results_dir: Path, timeout: float) -> dict[str, Any]:
    benchmarks = []
    for script in scripts:
        print(f"running {script.name} ...", flush=True)
        run = run_one(script, results_dir, timeout)
        outcome = "ok" if run["status"] == "ok" else f"FAILED ({run['error']})"
        print(f"  {outcome} in {run['seconds']:.1f} s", flush=True)
        if run["status"] != "ok":
            print(last_lines(results_dir / run["log_file"]), flush=True)
        benchmarks.append(run)
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "benchmarks": benchmarks,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench-dir", type=Path, default=BENCH_DIR)
    parser.add_argument("--results-dir", type=Path)
    parser.add_argument(
        "--only", action="append", help="a benchmark name (repeatable), e.g. meta_sync"
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS)
    args = parser.parse_args(argv)
    results_dir = args.results_dir or args.bench_dir / "results"
    results_dir.mkdir(parents=True, exist_ok=True)

    scripts = discover(args.bench_dir, args.only)
    if not scripts:
        print("no benchmarks found", file=sys.stderr)
        return 1
    summary = run_all(scripts, results_dir, args.timeout)
    summary_file = results_dir / "summary.json"
    summary_file.write_text(json.dumps(summary, indent=2) + "\n")
    report, chart = write_report(summary, results_dir)

    failed = [run["name"] for run in summary["benchmarks"] if run["status"] != "ok"]
    print(f"wrote {summary_file}, {report} and {chart}")
    if failed:
        print(f"failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
