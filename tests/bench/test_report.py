"""The benchmark runner and report, on fake benchmarks and fake results (nothing measured)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from matplotlib import image

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH_DIR))

import report  # noqa: E402
import run_all  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fake_summary() -> dict[str, Any]:
    return {
        "generated_at": "2026-12-03T14:00:00+00:00",
        "machine": {
            "python": "3.11.7",
            "platform": "Linux",
            "cpus": 2,
            "commit": "abc1234",
        },
        "benchmarks": [
            {
                "name": "options_build",
                "status": "ok",
                "seconds": 12.5,
                "exit_code": 0,
                "results_file": "options_build.json",
                "headline": report.headline_of(
                    {
                        "headline": [
                            {
                                "metric": "rebuild, nothing changed (median)",
                                "value": 41.2,
                                "unit": "ms",
                                "goal": 200,
                                "better": "lower",
                            },
                            {
                                "metric": "rebuild, one rename (median)",
                                "value": 260.0,
                                "unit": "ms",
                                "goal": 200,
                                "goal_met": False,
                            },
                        ]
                    }
                ),
            },
            {
                "name": "kafka_publish",
                "status": "ok",
                "seconds": 30.0,
                "exit_code": 0,
                "results_file": "kafka_publish.json",
                "headline": report.headline_of(
                    {
                        "headline": [
                            {
                                "metric": "publishes in flight",
                                "value": 9_100,
                                "unit": "msg/s",
                                "goal": 5_000,
                                "better": "higher",
                            }
                        ]
                    }
                ),
            },
            {
                "name": "meta_sync",
                "status": "failed",
                "seconds": 3.2,
                "exit_code": 1,
                "results_file": None,
                "error": "exit code 1: ConnectionRefusedError: MariaDB is not up",
                "headline": [],
            },
        ],
    }


def write_fake_benchmark(bench_dir: Path, name: str, body: str) -> None:
    (bench_dir / f"bench_{name}.py").write_text(textwrap.dedent(body))


# The report


def test_report_puts_each_headline_figure_next_to_its_goal(tmp_path: Path) -> None:
    report_path, _ = report.write_report(fake_summary(), tmp_path)
    text = report_path.read_text()

    assert (
        "| options_build | rebuild, nothing changed (median) | 41.2 ms | ≤ 200 ms | "
        "21% | met |" in text
    )
    assert (
        "| options_build | rebuild, one rename (median) | 260 ms | 200 ms | 130% |"
        in text
    )
    assert (
        "| kafka_publish | publishes in flight | 9,100 msg/s | ≥ 5,000 msg/s | 182% | met |"
        in (text)
    )
    assert (
        "3 benchmarks, 1 failed to run; 3 headline figures, 1 missed their goal."
        in text
    )


def test_report_marks_a_benchmark_that_failed_to_run(tmp_path: Path) -> None:
    report_path, _ = report.write_report(fake_summary(), tmp_path)
    text = report_path.read_text()

    assert (
        "| meta_sync | — | — | — | — | **FAILED to run** "
        "(exit code 1: ConnectionRefusedError: MariaDB is not up) |" in text
    )
    assert "| meta_sync | **failed** | 3.2 | 1 | `—` |" in text


def test_chart_is_a_png_with_a_row_per_figure_and_failure(tmp_path: Path) -> None:
    _, chart = report.write_report(fake_summary(), tmp_path)
    fewer = fake_summary()
    fewer["benchmarks"] = fewer["benchmarks"][:1]
    _, small_chart = report.write_report(fewer, tmp_path / "fewer")

    assert chart.read_bytes()[:8] == PNG_SIGNATURE
    height, width, _ = image.imread(chart).shape
    small_height, _, _ = image.imread(small_chart).shape
    assert width == 1100
    assert height > small_height


def test_chart_without_numeric_figures_still_renders(tmp_path: Path) -> None:
    summary = {"benchmarks": []}

    report_path, chart = report.write_report(summary, tmp_path)

    assert chart.read_bytes()[:8] == PNG_SIGNATURE
    assert "0 benchmarks, 0 failed to run" in report_path.read_text()


def test_headline_entries_get_a_verdict_from_the_direction_of_better() -> None:
    entries = report.headline_of(
        {
            "headline": [
                {"metric": "latency", "value": 250, "goal": 200, "better": "lower"},
                {"name": "throughput", "value": 250, "goal": 200, "better": "higher"},
                {"metric": "ratio", "value": 1.2, "goal": 1.1},
                {"value": 3},
                "not an entry",
            ]
        }
    )

    assert [(e["metric"], e["goal_met"]) for e in entries] == [
        ("latency", False),
        ("throughput", True),
        ("ratio", None),
    ]


def test_results_without_headline_fall_back_to_their_overall_verdict() -> None:
    (entry,) = report.headline_of({"benchmark": "rate_limiter", "goal_met": False})

    assert entry["goal_met"] is False
    assert entry["value"] is None
    assert report.headline_of({"benchmark": "x"}) == []
    assert report.headline_of([1, 2]) == []


# The runner


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "bench"
    directory.mkdir()
    write_fake_benchmark(
        directory,
        "good",
        """
        import json, pathlib
        results = pathlib.Path(__file__).parent / "results"
        results.mkdir(exist_ok=True)
        entry = {"metric": "speed", "value": 5, "unit": "ms", "goal": 10, "better": "lower"}
        (results / "good.json").write_text(json.dumps({"headline": [entry]}))
        print("measured")
        """,
    )
    return directory


def test_runner_collects_every_benchmark_and_writes_the_report(bench_dir: Path) -> None:
    exit_code = run_all.main(["--bench-dir", str(bench_dir)])

    results = bench_dir / "results"
    summary = json.loads((results / "summary.json").read_text())
    (run,) = summary["benchmarks"]
    assert exit_code == 0
    assert run["status"] == "ok"
    assert run["headline"][0]["goal_met"] is True
    assert (results / "logs" / "good.log").read_text() == "measured\n"
    assert (results / "REPORT.md").exists()
    assert (results / "headline.png").read_bytes()[:8] == PNG_SIGNATURE


def test_runner_exits_non_zero_when_a_benchmark_fails_to_run(bench_dir: Path) -> None:
    write_fake_benchmark(bench_dir, "crash", "raise SystemExit('broker unreachable')\n")
    write_fake_benchmark(bench_dir, "silent", "print('forgot to write results')\n")
    write_fake_benchmark(bench_dir, "stale", "pass\n")
    stale = bench_dir / "results" / "stale.json"
    stale.parent.mkdir()
    stale.write_text(json.dumps({"headline": []}))
    os.utime(stale, (1_000_000_000, 1_000_000_000))

    exit_code = run_all.main(["--bench-dir", str(bench_dir)])

    summary = json.loads((bench_dir / "results" / "summary.json").read_text())
    runs = {run["name"]: run for run in summary["benchmarks"]}
    assert exit_code == 1
    assert runs["good"]["status"] == "ok"
    assert runs["crash"]["status"] == "failed"
    assert runs["crash"]["error"] == "exit code 1: broker unreachable"
    assert runs["silent"]["error"] == "no silent.json written"
    assert runs["stale"]["error"] == "no stale.json written"
    report_text = (bench_dir / "results" / "REPORT.md").read_text()
    assert (
        "| crash | — | — | — | — | **FAILED to run** (exit code 1: broker unreachable) |"
        in (report_text)
    )


def test_runner_kills_a_benchmark_that_runs_past_the_timeout(bench_dir: Path) -> None:
    write_fake_benchmark(bench_dir, "slow", "import time\ntime.sleep(30)\n")

    exit_code = run_all.main(
        ["--bench-dir", str(bench_dir), "--only", "slow", "--timeout", "1"]
    )

    summary = json.loads((bench_dir / "results" / "summary.json").read_text())
    (run,) = summary["benchmarks"]
    assert exit_code == 1
    assert run["error"] == "timed out after 1 s"
    assert run["seconds"] < 10
