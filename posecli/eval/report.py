"""Writing and showing evaluation reports: report.json, CSV tables, report.md, PNG plots.

The output folder is built in a temporary sibling folder and renamed into place, so a report is
either complete or absent; an existing folder is only replaced when it is itself a posecli report.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from posecli import __version__
from posecli.atomic import atomic_folder
from posecli.errors import PoseCliError
from posecli.eval.plots import plot_over_time, plot_table
from posecli.eval.protocols import PROTOCOLS, EvalResult
from posecli.output_path import check_output_folder

TABLES = ("action", "subject", "camera", "joint")


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _header(protocols: list[str]) -> list[str]:
    return [f"{PROTOCOLS[k][0]} ({PROTOCOLS[k][1]})" for k in protocols]


def markdown(report: dict) -> str:
    """The human summary: headline numbers, then the per-action/subject/camera/joint tables."""
    protocols = report["protocols"]
    data, source = report["data"], report["source"]
    lines = [f"# posecli eval: {Path(source['path']).name} on {Path(data['path']).name}", "",
             f"- source: {source['kind']} `{source['path']}`" + (" (flip TTA)" if source.get("flip") else "")
             + (" (upright windows off)" if source.get("upright") is False else ""),
             f"- data: `{data['path']}` (dataset {data['dataset'] or '?'}, split {data['split'] or '?'}), "
             f"{data['sequences']} sequences, {data['frames']} frames, subjects {', '.join(data['subjects'])}",
             f"- joints excluded (missing ground truth or prediction): {report['joints_missing']}", "",
             "| protocol | frame-weighted | " + ("H36M mean over actions | " if report["action_average"] else "")
             + "joints |",
             "|---|---|" + ("---|" if report["action_average"] else "") + "---|"]
    for key in protocols:
        o = report["overall"][key]
        avg = f" {_fmt(report['action_average'][key])} |" if report["action_average"] else ""
        lines.append(f"| {o['name']} ({o['unit']}) | {_fmt(o['value'])} |{avg} {o['count']} |")
    for kind in TABLES:
        rows = report["tables"][kind]
        lines += ["", f"## per {kind}", "", f"| {kind} | frames | " + " | ".join(_header(protocols)) + " |",
                  "|---|---|" + "---|" * len(protocols)]
        lines += [f"| {r['name'] or '(none)'} | {r['frames']} | " + " | ".join(_fmt(r[k]) for k in protocols) + " |"
                  for r in rows]
    if report["worst_sequences"]:
        lines += ["", "## worst sequences (MPJPE)", ""]
        lines += [f"- {r['subject']} / {r['action']} / {r['camera']}: {_fmt(r['p1'])} mm over {r['frames']} frames"
                  for r in report["worst_sequences"]]
    return "\n".join(lines) + "\n"


def _json_ready(value):
    """NaN/inf -> null so report.json is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def _write_csv(path: Path, rows: list[dict], protocols: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "frames", "joints", *protocols])
        for r in rows:
            writer.writerow([r["name"], r["frames"], r["joints"], *(_fmt(r[k], 3) for k in protocols)])


def check_report_folder(out: str | Path) -> Path:
    """Refuse, before any work, an --out that cannot become a report folder: an existing folder
    that is not a posecli report (it would be replaced), a file, or an unwritable place."""
    out = Path(out)
    check_output_folder(out)
    if out.exists() and not (out.is_dir() and (out / "report.json").is_file()):
        raise PoseCliError("output exists and is not a posecli report folder; choose another --out", out)
    return out


def write_report(result: EvalResult, out: str | Path) -> Path:
    """Write report.json, per_<table>.csv, report.md and plots into `out`, atomically."""
    out = check_report_folder(out)
    report = {"posecli_version": __version__,
              "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **result.report}
    with atomic_folder(out) as tmp:
        text = json.dumps(_json_ready(report), indent=2, allow_nan=False)
        (tmp / "report.json").write_text(text, encoding="utf-8")
        for kind in TABLES:
            _write_csv(tmp / f"per_{kind}.csv", report["tables"][kind], report["protocols"])
        (tmp / "report.md").write_text(markdown(report), encoding="utf-8")
        key = report["protocols"][0]
        name, unit = PROTOCOLS[key]
        plot_table(report["tables"]["action"], key, tmp / "per_action.png", f"{name} per action", unit)
        plot_table(report["tables"]["joint"], key, tmp / "per_joint.png", f"{name} per joint", unit)
        plot_over_time(result.frame_error, tmp / "worst_sequences.png", "MPJPE over time, worst sequences")
    return out


def load_report(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PoseCliError("report not found", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PoseCliError(f"not a JSON report ({exc.__class__.__name__})", path) from None
    if not isinstance(report, dict) or "overall" not in report or "tables" not in report:
        raise PoseCliError("not a posecli eval report (no 'overall'/'tables')", path)
    return report


def summary_table(report: dict) -> Table:
    """The headline numbers as a rich table."""
    avg = report.get("action_average")
    table = Table(title=f"{Path(report['source']['path']).name} on {Path(report['data']['path']).name} "
                        f"({report['data']['frames']} frames)")
    table.add_column("protocol")
    table.add_column("frame-weighted", justify="right")
    if avg:
        table.add_column("H36M mean over actions", justify="right")
    table.add_column("joints", justify="right")
    for key in report["protocols"]:
        o = report["overall"][key]
        cells = [f"{o['name']} ({o['unit']})", _fmt(o["value"])] + ([_fmt(avg[key])] if avg else [])
        table.add_row(*cells, str(o["count"]))
    return table


def action_table(report: dict) -> Table:
    protocols = report["protocols"]
    units = ", ".join(f"{PROTOCOLS[k][0]} {PROTOCOLS[k][1]}" for k in protocols)
    table = Table(title="per action", caption=units)
    table.add_column("action")
    table.add_column("frames", justify="right")
    for key in protocols:
        table.add_column(PROTOCOLS[key][0], justify="right")
    for r in report["tables"]["action"]:
        table.add_row(r["name"] or "(none)", str(r["frames"]), *(_fmt(r[k]) for k in protocols))
    return table


def print_report(report: dict, console: Console | None = None) -> None:
    console = console or Console()
    console.print(summary_table(report))
    console.print(action_table(report))


def _headline(report: dict, key: str) -> float | None:
    avg = report.get("action_average")
    if avg and key in avg:
        return avg[key]
    return report["overall"][key]["value"] if key in report["overall"] else None


def compare_table(a: dict, b: dict, name_a: str = "A", name_b: str = "B") -> Table:
    """Two reports side by side: headline and per-action values per protocol, with B - A."""
    keys = [k for k in PROTOCOLS if k in a["protocols"] or k in b["protocols"]]
    headline = ("overall: mean over actions (Human3.6M)" if a.get("action_average") or b.get("action_average")
                else "overall: frame-weighted")
    table = Table(title=f"eval comparison ({headline})", caption=f"A = {name_a}\nB = {name_b}")
    for column in ("row", "protocol", "A", "B", "B-A"):
        table.add_column(column, justify="left" if column in ("row", "protocol") else "right")

    def add(row: str, key: str, va: float | None, vb: float | None) -> None:
        diff = None if va is None or vb is None else vb - va
        table.add_row(row, f"{PROTOCOLS[key][0]} ({PROTOCOLS[key][1]})", _fmt(va), _fmt(vb),
                      "-" if diff is None or not math.isfinite(diff) else f"{round(diff, 1) + 0.0:+.1f}")

    for key in keys:
        add("overall", key, _headline(a, key), _headline(b, key))
    rows_a = {r["name"]: r for r in a["tables"]["action"]}
    rows_b = {r["name"]: r for r in b["tables"]["action"]}
    for name in sorted(set(rows_a) | set(rows_b)):
        ra, rb = rows_a.get(name, {}), rows_b.get(name, {})
        for key in keys:
            add(name or "(none)", key, ra.get(key), rb.get(key))
    return table
