"""Turn ``bench/results/summary.json`` into ``REPORT.md`` and ``headline.png``.

``run_all.py`` calls ``write_report`` after the benchmarks; run this file alone to redraw the
report from an existing summary:

    .venv/bin/python bench/report.py [--summary bench/results/summary.json]

Headline entries (see bench/README.md) are ``{"metric", "value", "unit", "goal", "goal_met"}``
plus an optional ``"better": "lower" | "higher"``. The chart shows each numeric entry as a
percentage of its goal, coloured by whether the goal was met.
"""

from __future__ import annotations

import argparse
import json
import math
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

RESULTS_DIR = Path(__file__).parent / "results"
REPORT_NAME = "REPORT.md"
CHART_NAME = "headline.png"
# Bars longer than this are cut, with the real percentage written beside them.
CHART_CAP_PERCENT = 300.0
COLOURS = {True: "#2e7d32", False: "#c62828", None: "#9e9e9e"}

Entry = dict[str, Any]


def number(value: object) -> float | None:
    """A finite float, or None for anything that is not a plain number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def normalise_entry(raw: object) -> Entry | None:
    """One headline entry in the agreed shape; None when it names no metric."""
    if not isinstance(raw, dict):
        return None
    metric = raw.get("metric") or raw.get("name")
    if not metric:
        return None
    better = raw.get("better")
    entry: Entry = {
        "metric": str(metric),
        "value": raw.get("value"),
        "unit": str(raw.get("unit") or ""),
        "goal": raw.get("goal"),
        "better": better if better in ("lower", "higher") else None,
        "goal_met": raw.get("goal_met")
        if isinstance(raw.get("goal_met"), bool)
        else None,
    }
    value, goal = number(entry["value"]), number(entry["goal"])
    if entry["goal_met"] is None and value is not None and goal is not None:
        if entry["better"] == "lower":
            entry["goal_met"] = value <= goal
        elif entry["better"] == "higher":
            entry["goal_met"] = value >= goal
    return entry


def headline_of(results: object) -> list[Entry]:
    """The headline entries of one benchmark's results file.

    Files with a ``headline`` list give their entries; files without one but with a top-level
    boolean ``goal_met`` give a single entry that carries only that verdict.
    """
    if not isinstance(results, dict):
        return []
    raw = results.get("headline")
    if isinstance(raw, list):
        return [entry for item in raw if (entry := normalise_entry(item)) is not None]
    if isinstance(results.get("goal_met"), bool):
        return [
            {
                "metric": "overall goal (no headline entries in the results file)",
                "value": None,
                "unit": "",
                "goal": None,
                "better": None,
                "goal_met": results["goal_met"],
            }
        ]
    return []


def percent_of_goal(entry: Entry) -> float | None:
    value, goal = number(entry["value"]), number(entry["goal"])
    if value is None or goal is None or goal == 0:
        return None
    return value / goal * 100.0


def format_value(value: object, unit: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text} {unit}".strip()


def format_goal(entry: Entry) -> str:
    if entry["goal"] is None:
        return "—"
    sign = {"lower": "≤ ", "higher": "≥ "}.get(entry["better"] or "", "")
    return sign + format_value(entry["goal"], entry["unit"])


def verdict(goal_met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "—"}[goal_met]


def escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(summary: dict[str, Any], chart_name: str | None) -> str:
    benchmarks = summary.get("benchmarks", [])
    failed = [bench for bench in benchmarks if bench["status"] != "ok"]
    entries = [
        (bench, entry) for bench in benchmarks for entry in bench.get("headline", [])
    ]
    missed = [entry for _, entry in entries if entry["goal_met"] is False]
    machine = summary.get("machine", {})

    lines = [
        "# Benchmark report",
        "",
        f"Generated {summary.get('generated_at', '?')} by `bench/run_all.py` on "
        f"{machine.get('cpus', '?')} CPUs, Python {machine.get('python', '?')}, "
        f"{machine.get('platform', '?')}"
        + (f", commit `{machine['commit']}`" if machine.get("commit") else "")
        + ".",
        "",
        f"{len(benchmarks)} benchmarks, {len(failed)} failed to run; "
        f"{len(entries)} headline figures, {len(missed)} missed their goal.",
        "",
        "## Headline figures",
        "",
        "| benchmark | metric | value | goal | % of goal | verdict |",
        "|---|---|---:|---:|---:|---|",
    ]
    for bench in benchmarks:
        if bench["status"] != "ok":
            lines.append(
                f"| {bench['name']} | — | — | — | — | **FAILED to run** "
                f"({escape(bench.get('error') or bench['status'])}) |"
            )
            continue
        if not bench.get("headline"):
            lines.append(f"| {bench['name']} | no headline entries | — | — | — | — |")
        for entry in bench.get("headline", []):
            percent = percent_of_goal(entry)
            lines.append(
                f"| {bench['name']} | {escape(entry['metric'])} | "
                f"{escape(format_value(entry['value'], entry['unit']))} | "
                f"{escape(format_goal(entry))} | "
                f"{'—' if percent is None else f'{percent:.0f}%'} | "
                f"{verdict(entry['goal_met'])} |"
            )
    lines += [
        "",
        "## Runs",
        "",
        "| benchmark | status | seconds | exit code | results file |",
        "|---|---|---:|---:|---|",
    ]
    for bench in benchmarks:
        status = "ok" if bench["status"] == "ok" else f"**{bench['status']}**"
        lines.append(
            f"| {bench['name']} | {status} | {bench.get('seconds', 0):.1f} | "
            f"{bench.get('exit_code', '—')} | `{bench.get('results_file') or '—'}` |"
        )
    if chart_name:
        lines += [
            "",
            "## Chart",
            "",
            "Each numeric figure as a percentage of its goal (the line is 100%). For a "
            "lower-is-better figure, a bar short of the line meets the goal; for a "
            "higher-is-better one, a bar past it does. Green: met, red: missed, grey: "
            "no verdict.",
            "",
            f"![Headline figures as % of goal]({chart_name})",
        ]
    return "\n".join(lines) + "\n"


def _tick_label(label: str) -> str:
    """A bar's label on at most two lines of 48 characters, cut with an ellipsis beyond."""
    return "\n".join(textwrap.wrap(label, width=48, max_lines=2, placeholder=" …"))


def render_chart(summary: dict[str, Any], path: Path) -> None:
    rows: list[tuple[str, float | None, bool | None, str]] = []
    for bench in summary.get("benchmarks", []):
        if bench["status"] != "ok":
            rows.append((f"{bench['name']}", None, False, "FAILED to run"))
            continue
        for entry in bench.get("headline", []):
            percent = percent_of_goal(entry)
            if percent is not None:
                label = f"{bench['name']}: {entry['metric']}"
                note = (
                    f"{percent:.0f}%  ({format_value(entry['value'], entry['unit'])}, "
                    f"goal {format_goal(entry)})"
                )
                rows.append((label, percent, entry["goal_met"], note))

    height = max(2.0, 0.55 * len(rows) + 1.2)
    figure, axes = plt.subplots(figsize=(10, height), dpi=110)
    try:
        if not rows:
            axes.text(0.5, 0.5, "no numeric headline figures", ha="center", va="center")
            axes.set_axis_off()
        else:
            positions = list(range(len(rows)))[::-1]
            widths = [min(p, CHART_CAP_PERCENT) if p else 0.0 for _, p, _, _ in rows]
            colours = [COLOURS[met] for _, _, met, _ in rows]
            axes.barh(positions, widths, color=colours, height=0.6)
            axes.axvline(100.0, color="black", linewidth=1, linestyle="--")
            axes.set_yticks(
                positions, [_tick_label(label) for label, *_ in rows], fontsize=8
            )
            for position, width, (_, _, met, note) in zip(
                positions, widths, rows, strict=True
            ):
                axes.text(
                    width + 3,
                    position,
                    note,
                    va="center",
                    fontsize=8,
                    color=COLOURS[met] if met is False else "black",
                )
            # Room on the right for the notes; at least the goal line and a little past it.
            axes.set_xlim(0, max(120.0, *widths) * 1.6)
            axes.set_xlabel("% of goal (dashed line: the goal)")
        axes.set_title("GMV Backend benchmarks: headline figures")
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)


def write_report(summary: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write REPORT.md and headline.png into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = out_dir / CHART_NAME
    report = out_dir / REPORT_NAME
    render_chart(summary, chart)
    report.write_text(render_markdown(summary, CHART_NAME))
    return report, chart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, default=RESULTS_DIR / "summary.json")
    args = parser.parse_args()
    summary = json.loads(args.summary.read_text())
    report, chart = write_report(summary, args.summary.parent)
    print(f"wrote {report} and {chart}")


if __name__ == "__main__":
    main()
