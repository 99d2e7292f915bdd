"""docs/results.md from the finished study runs: tables, plots, commands and generated findings.

Every sentence that states an outcome is computed from the measured numbers: a configuration is
listed under "Where pretraining did not help" when its mean error with pretraining is not lower
than without, or lower by no more than the seed spread (the standard deviation of the paired
per-seed differences; for single-seed runs the largest such spread measured at the small budgets).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from study.grid import (
    BUDGETS,
    SINGLE_BUDGET,
    VARIANT_LABELS,
    RunSpec,
    StudyOptions,
    study_command,
)
from study.runner import (
    eval_file,
    init_path,
    is_finished,
    is_trained,
    read_json,
    run_dir,
)


@dataclass
class RunResult:
    spec: RunSpec
    state: dict[str, Any]
    evals: dict[float, dict[str, Any]]                 # input-noise level -> eval-noise<L>.json
    curve: np.ndarray                                  # [K, 3] step, validation MPJPE (mm), train wall s


@dataclass
class Study:
    opts: StudyOptions
    facts: dict[str, Any]
    runs: dict[str, RunResult] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)               # runs or evaluations not done
    pretrain_logs: dict[str, np.ndarray] = field(default_factory=dict)   # pretraining run -> curve

    def values(self, arch: str, init: str, fraction: float, key: str = "p1", noise: float = 0.0
               ) -> dict[int, float]:
        """seed -> test error of the finished fine-tuning runs of one arm."""
        out = {}
        for r in self.runs.values():
            i = r.spec.info
            if (r.spec.kind == "finetune" and i["arch"] == arch and i["init"] == init
                    and math.isclose(i["fraction"], fraction) and noise in r.evals):
                out[int(i["seed"])] = float(r.evals[noise][key])
        return out


def read_curve(folder: Path) -> np.ndarray:
    """(step, validation MPJPE, training wall seconds) rows from a run's log.csv. The wall time is
    the sum over logged intervals of steps x frames per step / frames per second (validation and
    checkpointing excluded), so it is the compute that fine-tuning itself took."""
    log, config = folder / "log.csv", folder / "config.yaml"
    if not log.is_file() or not config.is_file():
        return np.zeros((0, 3))
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    window = cfg["data"].get("window") or cfg["model"]["window"]
    frames_per_step = int(cfg["train"]["batch_size"]) * int(cfg["train"].get("accumulate", 1)) * int(window)
    rows, wall, last_step = [], 0.0, 0
    with open(log, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            step = int(row["step"])
            if row.get("frames_per_s"):
                wall += (step - last_step) * frames_per_step / max(float(row["frames_per_s"]), 1e-9)
                last_step = step
            val = row.get("val_mpjpe_mm") or ""
            rows.append((step, float(val) if val else math.nan, wall))
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def collect(runs: list[RunSpec], facts: dict[str, Any], opts: StudyOptions) -> Study:
    """Every trained run of the plan with the evaluations it has and its validation curve; runs
    missing training or an evaluation are listed in `missing`."""
    study = Study(opts, facts)
    for spec in runs:
        if not is_trained(opts, spec):
            study.missing.append(f"`{spec.name}`")
            continue
        if not is_finished(opts, spec):
            todo = [f"{n:g}" for n in spec.evals if not eval_file(opts, spec, n).is_file()]
            study.missing.append(f"`{spec.name}`: evaluation at input noise {', '.join(todo)}")
        folder = run_dir(opts, spec)
        evals = {n: read_json(eval_file(opts, spec, n)) for n in spec.evals if eval_file(opts, spec, n).is_file()}
        study.runs[spec.name] = RunResult(spec, read_json(folder / "study.json") or {}, evals, read_curve(folder))
        if spec.kind == "finetune" and spec.init:
            source = Path(init_path(opts, spec) or "").parent
            study.pretrain_logs.setdefault(spec.init, read_curve(source))
    return study


# ---------------------------------------------------------------- numbers


def mean_sd(values: list[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (nan for one value) and count."""
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return math.nan, math.nan, 0
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else math.nan, int(a.size)


def fmt(values: list[float] | dict[int, float], digits: int = 1) -> str:
    m, sd, n = mean_sd(list(values.values()) if isinstance(values, dict) else values)
    if n == 0:
        return "not run"
    return f"{m:.{digits}f}" if n == 1 else f"{m:.{digits}f} ± {sd:.{digits}f}"


def paired(pre: dict[int, float], scratch: dict[int, float]) -> tuple[float, float, int]:
    """Mean and sd of (pretrained - scratch) over the seeds both arms have."""
    seeds = sorted(set(pre) & set(scratch))
    return mean_sd([pre[s] - scratch[s] for s in seeds])


def mean_curve(study: Study, arch: str, init: str, fraction: float) -> np.ndarray:
    """Seed-mean validation curve [K, 3] (step, MPJPE, wall s) over the steps all seeds validated."""
    curves = [r.curve[np.isfinite(r.curve[:, 1])] for r in study.runs.values()
              if r.spec.kind == "finetune" and r.spec.info["arch"] == arch and r.spec.info["init"] == init
              and math.isclose(r.spec.info["fraction"], fraction) and len(r.curve)]
    curves = [c for c in curves if len(c)]
    if not curves:
        return np.zeros((0, 3))
    steps = sorted(set.intersection(*(set(c[:, 0].tolist()) for c in curves)))
    rows = [[s, *np.mean([c[c[:, 0] == s][0, 1:] for c in curves], axis=0)] for s in steps]
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def steps_to_reach(curve: np.ndarray, target: float) -> tuple[float, float] | None:
    """(step, wall s) of the first validation at or below `target`, or None."""
    hit = np.nonzero(curve[:, 1] <= target)[0] if len(curve) else []
    return (float(curve[hit[0], 0]), float(curve[hit[0], 2])) if len(hit) else None


def compute_rows(study: Study) -> list[dict[str, Any]]:
    """Per budget: final validation error of both arms and how soon the pretrained arm reached
    the scratch arm's final error."""
    rows = []
    for fraction in BUDGETS:
        pre, scr = mean_curve(study, "stformer", "main", fraction), mean_curve(study, "stformer", "scratch", fraction)
        if not len(pre) or not len(scr):
            continue
        reach = steps_to_reach(pre, scr[-1, 1])
        rows.append({"fraction": fraction, "steps": scr[-1, 0], "scratch_final": scr[-1, 1], "pre_final": pre[-1, 1],
                     "scratch_wall": scr[-1, 2], "reach": reach})
    return rows


def _pct(fraction: float) -> str:
    return f"{fraction * 100:g} %"


def _takes(study: Study, fraction: float) -> str:
    for r in study.runs.values():
        if r.spec.kind == "finetune" and math.isclose(r.spec.info["fraction"], fraction) and "takes_kept" in r.state:
            return f"{len(r.state['takes_kept'])} of {r.state['takes_total']}"
    return "?"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def _delta(pre: dict[int, float], scratch: dict[int, float]) -> str:
    m, sd, n = paired(pre, scratch)
    if n == 0:
        return "-"
    return f"{m:+.1f}" if n == 1 else f"{m:+.1f} ± {sd:.1f}"


# ---------------------------------------------------------------- findings


@dataclass
class Comparison:
    label: str
    pre: dict[int, float]
    scratch: dict[int, float]
    what: str = "P1"


def comparisons(study: Study) -> list[Comparison]:
    """Every pretrained-vs-scratch pair the study measured."""
    both, noise = study.facts["both"], study.opts.noise_level
    out = []
    for fraction in BUDGETS:
        for key in ("p1", "p2"):
            out.append(Comparison(f"3D budget {_pct(fraction)}", study.values("stformer", "main", fraction, key),
                                  study.values("stformer", "scratch", fraction, key), key.upper()))
        out.append(Comparison(f"3D budget {_pct(fraction)}, detector-like noise {noise:g}",
                              study.values("stformer", "main", fraction, "p1", noise),
                              study.values("stformer", "scratch", fraction, "p1", noise)))
    scratch = study.values("stformer", "scratch", SINGLE_BUDGET)
    for init in ("masked", "lifting", "coco", both):
        out.append(Comparison(f"pretraining: {VARIANT_LABELS[init]} ({_pct(SINGLE_BUDGET)} budget)",
                              study.values("stformer", init, SINGLE_BUDGET), scratch))
    out.append(Comparison(f"tcn, pretrained vs scratch ({_pct(SINGLE_BUDGET)} budget)",
                          study.values("tcn", "main", SINGLE_BUDGET), study.values("tcn", "scratch", SINGLE_BUDGET)))
    seen, unique = set(), []
    for c in out:          # the study's own masked + lifting run may be the budgets' main arm: list it once
        key = (tuple(sorted(c.pre.items())), tuple(sorted(c.scratch.items())), c.what)
        if c.pre and c.scratch and key not in seen:
            seen.add(key)
            unique.append(c)
    return unique


def did_not_help(study: Study) -> list[str]:
    """Generated lines for the configurations where pretraining was worse or within the spread."""
    comps = comparisons(study)
    spreads = [paired(c.pre, c.scratch)[1] for c in comps if paired(c.pre, c.scratch)[2] > 1]
    proxy = max(spreads) if spreads else math.nan
    lines = []
    for c in comps:
        m, sd, n = paired(c.pre, c.scratch)
        seeds = sorted(set(c.pre) & set(c.scratch))
        pre, scr = (float(np.mean([arm[s] for s in seeds])) for arm in (c.pre, c.scratch))
        numbers = f"{c.what} {pre:.1f} mm pretrained vs {scr:.1f} mm scratch, same seeds"
        if m >= 0:
            lines.append(f"- {c.label}: pretraining was worse by {m:.1f} mm ({numbers}, {n} seed(s)).")
        elif n > 1 and -m <= sd:
            lines.append(f"- {c.label}: the gain of {-m:.1f} mm is within the seed spread "
                         f"(± {sd:.1f} mm over {n} seeds; {numbers}).")
        elif n == 1 and math.isfinite(proxy) and -m <= proxy:
            lines.append(f"- {c.label}: single seed; the gain of {-m:.1f} mm is within the largest seed "
                         f"spread measured at the small budgets (± {proxy:.1f} mm; {numbers}).")
    for row in compute_rows(study):
        if row["reach"] is None:
            lines.append(f"- Compute at {_pct(row['fraction'])}: the pretrained model never reached the scratch "
                         f"model's final validation error ({row['scratch_final']:.1f} mm) within "
                         f"{row['steps']:.0f} steps (it ended at {row['pre_final']:.1f} mm).")
    return lines


# ---------------------------------------------------------------- markdown


def _headline(study: Study) -> list[str]:
    lines = []
    for fraction in BUDGETS:
        pre, scr = study.values("stformer", "main", fraction), study.values("stformer", "scratch", fraction)
        if pre and scr:
            m, _, n = paired(pre, scr)
            lines.append(f"- {_pct(fraction)} of the 3D takes ({_takes(study, fraction)}): P1 {fmt(pre)} mm "
                         f"with 2D pretraining vs {fmt(scr)} mm from scratch (difference {m:+.1f} mm, {n} seed(s)).")
    for row in compute_rows(study):
        if row["reach"] is not None:
            step, wall = row["reach"]
            lines.append(f"- Compute at {_pct(row['fraction'])}: the pretrained model reached the scratch model's "
                         f"final validation MPJPE ({row['scratch_final']:.1f} mm after {row['steps']:.0f} steps, "
                         f"{row['scratch_wall']:.0f} s) after {step:.0f} steps ({wall:.0f} s), "
                         f"{row['steps'] / step:.1f}x fewer fine-tuning steps.")
    return lines or ["- No budget comparison has finished yet."]


def _budget_section(study: Study) -> list[str]:
    rows = []
    for fraction in BUDGETS:
        pre1, scr1 = study.values("stformer", "main", fraction), study.values("stformer", "scratch", fraction)
        pre2, scr2 = (study.values("stformer", "main", fraction, "p2"),
                      study.values("stformer", "scratch", fraction, "p2"))
        if pre1 or scr1:
            rows.append([_pct(fraction), _takes(study, fraction), fmt(pre1), fmt(scr1), _delta(pre1, scr1),
                         fmt(pre2), fmt(scr2), _delta(pre2, scr2), str(len(pre1))])
    return ["## Error at each 3D budget", "",
            table(["3D budget", "takes", "P1 pretrained", "P1 scratch", "ΔP1", "P2 pretrained", "P2 scratch",
                   "ΔP2", "seeds"], rows), "", "![P1 against 3D budget](results_budget.png)", ""]


def _compute_section(study: Study) -> list[str]:
    rows = []
    for r in compute_rows(study):
        reach = "not reached" if r["reach"] is None else f"{r['reach'][0]:.0f} steps ({r['reach'][1]:.0f} s)"
        rows.append([_pct(r["fraction"]), f"{r['scratch_final']:.1f}", f"{r['pre_final']:.1f}",
                     f"{r['steps']:.0f} steps ({r['scratch_wall']:.0f} s)", reach])
    curves = {(f, i): mean_curve(study, "stformer", i, f) for f in BUDGETS for i in ("main", "scratch")}
    steps = sorted({float(s) for c in curves.values() for s in c[:, 0]})
    budgets = [f for f in BUDGETS if len(curves[(f, "main")]) or len(curves[(f, "scratch")])]
    curve_rows = []
    for step in steps:
        cells, walls = [], []
        for f in budgets:
            for i in ("main", "scratch"):
                hit = curves[(f, i)][curves[(f, i)][:, 0] == step]
                cells.append(f"{hit[0, 1]:.1f}" if len(hit) else "-")
                walls += hit[:, 2].tolist()
        curve_rows.append([f"{step:.0f}", f"{np.mean(walls):.0f}", *cells])
    curve_header = ["step", "wall (s)", *(f"{_pct(f)} {a}" for f in budgets for a in ("pretrained", "scratch"))]
    pre_cost = []
    for name, curve in study.pretrain_logs.items():
        if len(curve):
            pre_cost.append(f"`{name}`: {curve[-1, 0]:.0f} steps, {curve[-1, 2]:.0f} s of training")
    return ["## Compute: error against fine-tuning steps and wall time", "",
            (f"Validation MPJPE on {study.opts.val_sequences} test sequences during fine-tuning (seed mean); "
             "wall time is training time from each run's log.csv (validation excluded)."), "",
            table(["3D budget", "scratch final (mm)", "pretrained final (mm)", "scratch used",
                   "pretrained reached scratch's final error after"], rows), "",
            "Validation MPJPE (mm) at each validation step; wall time is the mean over these runs:", "",
            table(curve_header, curve_rows), "",
            "One-off pretraining cost, not included above: " + ("; ".join(pre_cost) or "unknown") + ".", "",
            "![Validation MPJPE against fine-tuning steps and wall time](results_compute.png)", ""]


def _arm_table(study: Study, arms: list[tuple[str, str, str]]) -> str:
    scratch = {a: study.values(a, "scratch", SINGLE_BUDGET) for a in ("stformer", "tcn")}
    rows = []
    for label, arch, init in arms:
        p1, p2 = study.values(arch, init, SINGLE_BUDGET), study.values(arch, init, SINGLE_BUDGET, "p2")
        delta = "-" if init == "scratch" else _delta(p1, scratch[arch])
        rows.append([label, fmt(p1), fmt(p2), delta, str(len(p1))])
    return table(["configuration", "P1 (mm)", "P2 (mm)", "ΔP1 vs scratch", "seeds"], rows)


def _groups_sections(study: Study) -> list[str]:
    both, params, out = study.facts["both"], study.facts["params"], []
    ran = lambda arch, init: bool(study.values(arch, init, SINGLE_BUDGET))
    budget = _pct(SINGLE_BUDGET)
    if ran("stformer", "masked") or ran("stformer", "lifting"):
        out += [f"## Ablation: pretraining objectives ({budget} 3D budget)", "", _arm_table(study, [
            (VARIANT_LABELS[i], "stformer", i) for i in ("scratch", "masked", "lifting", both)]), ""]
    if ran("stformer", "coco"):
        out += [f"## 2D pretraining data ({budget} 3D budget)", "", _arm_table(study, [
            (VARIANT_LABELS[i], "stformer", i) for i in ("scratch", "coco", both)]), ""]
    if ran("tcn", "scratch") or ran("tcn", "main"):
        out += [f"## Architectures at comparable parameter counts ({budget} 3D budget)", "",
                (f"stformer: {params['stformer']:,} parameters; tcn (VideoPose3D, {study.facts['tcn_channels']} "
                 f"channels): {params['tcn']:,} parameters; both pretrained with the same recipe and steps. The tcn "
                 "predicts a window's centre frame and stformer all its frames, so tcn fine-tuning batches hold "
                 "window-times more windows: both see the same supervised 3D frames per step."), "",
                _arm_table(study, [("stformer scratch", "stformer", "scratch"), ("stformer pretrained", "stformer", both),
                                   ("tcn scratch", "tcn", "scratch"), ("tcn pretrained", "tcn", "main")]), ""]
    noise = study.opts.noise_level
    rows = []
    for fraction in BUDGETS:
        cells = [study.values("stformer", init, fraction, "p1", n) for n in (0.0, noise) for init in ("main", "scratch")]
        if cells[2] or cells[3]:
            rows.append([_pct(fraction), *(fmt(c) for c in cells), _delta(cells[2], cells[3])])
    if rows:
        out += [f"## Robustness: detector-like noise on the 2D input (level {noise:g})", "",
                (f"`posecli eval --input-noise {noise:g}`: the training detector model (jitter, limb swaps, "
                 f"dropped joints, outliers) at {noise:g}x its default strength, fixed seed, same test split."), "",
                table(["3D budget", "P1 clean, pretrained", "P1 clean, scratch", "P1 noisy, pretrained",
                       "P1 noisy, scratch", "ΔP1 noisy"], rows), "", *_noise_note(study)]
    return out


def _noise_note(study: Study) -> list[str]:
    """Say so when noisy input scored better than clean input, and why, for the runs where it did."""
    noise, better, total = study.opts.noise_level, 0, 0
    for r in study.runs.values():
        if 0.0 in r.evals and noise in r.evals and noise != 0.0:
            total += 1
            better += r.evals[noise]["p1"] < r.evals[0.0]["p1"]
    if not better:
        return []
    return [(f"In {better} of {total} runs the noisy input gave a *lower* error than clean ground-truth 2D. "
             "Training always applies the detector noise model, whose confidences stay below 1, so clean "
             "input with confidence 1 on every joint lies outside what the model has seen; detector output "
             "(the case that matters for `posecli infer`) looks like the noisy input."), ""]


def _time_section(study: Study) -> list[str]:
    per_group: dict[str, list[float]] = {}
    total_wall = total_cpu = 0.0
    for r in study.runs.values():
        wall = r.state.get("train_seconds", 0.0) + sum(e.get("seconds", 0.0) for e in r.evals.values())
        cpu = r.state.get("train_cpu_seconds", 0.0) + sum(e.get("cpu_seconds", 0.0) for e in r.evals.values())
        g = "pretraining" if r.spec.kind == "pretrain" else "/".join(sorted(r.spec.groups))
        acc = per_group.setdefault(g, [0, 0.0, 0.0])
        acc[0] += 1
        acc[1] += wall
        acc[2] += cpu
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
    rows = [[g, str(int(n)), f"{w / 60:.1f}", f"{c / 60:.1f}"] for g, (n, w, c) in sorted(per_group.items())]
    rows.append(["total", str(len(study.runs)), f"{total_wall / 60:.1f}", f"{total_cpu / 60:.1f}"])
    note = ""
    if study.opts.pretrained is not None:
        curve = study.pretrain_logs.get("main", np.zeros((0, 3)))
        note = (f"The main pretrained checkpoint `{study.opts.pretrained}` was trained before the study"
                + (f" ({curve[-1, 0]:.0f} steps, {curve[-1, 2] / 60:.1f} min of training)." if len(curve) else "."))
    return ["## CPU time", "", ("Wall and CPU minutes of the invocation that finished each run (training + "
                                "evaluation; CPU time counts every thread)."), "",
            table(["runs", "count", "wall (min)", "CPU (min)"], rows), "", note, ""]


def _commands_section(study: Study) -> list[str]:
    lines = ["## Commands", "", "Everything above:", "", "```", study_command(study.opts), "```", "",
             "Each run (train, then evaluate; the run folder names appear in the tables' configuration):", "",
             "<details><summary>per-run commands</summary>", "", "```"]
    for r in study.runs.values():
        lines.append(f"# {r.spec.name}")
        lines.append(r.state.get("command", ""))
        lines += [e["command"] for e in r.evals.values() if "command" in e]
    return [*lines, "```", "", "</details>", ""]


def markdown(study: Study) -> str:
    o, f = study.opts, study.facts
    first = next((e for r in study.runs.values() for e in r.evals.values()), {})
    model = f["model"]
    intro = (f"Generated by `benchmarks/study.py` from the runs in `{o.out}`. Test data: the CMU mocap test "
             f"split seen by virtual cameras (`{o.caches / 'mocap-test.h5'}`, {first.get('frames', '?')} frames, "
             f"every frame scored); P1 = MPJPE, P2 = P-MPJPE, root-relative, in mm, of each run's final "
             f"checkpoint. Model: {model['name']} {model.get('size', '')}, window {model['window']} "
             f"({f['params']['stformer']:,} parameters); {o.steps} fine-tuning steps per run; pretraining "
             + (f"`{o.pretrained}` for the main arm and " if o.pretrained else "")
             + f"{o.pretrain_steps} steps for the study's own pretraining runs. Seeds {f['seeds']} at the 1 % and "
             f"10 % budgets, {f['single_seeds']} elsewhere; the 3D takes kept depend on the seed "
             "(`data.fraction_seed`), so the spread includes the choice of takes. ± is the standard deviation "
             "over seeds; Δ = pretrained − scratch, paired by seed (negative: pretraining helped).")
    missing = [f"- {m}" for m in study.missing]
    lines = ["# Results: 2D pretraining for 3D pose lifting", "", intro, "", "## Headline", "", *_headline(study), "",
             *_budget_section(study), *_compute_section(study), *_groups_sections(study),
             "## Where pretraining did not help", "",
             *(did_not_help(study) or [("- Nowhere in this study: in every comparison the pretrained model's "
                                        "mean error was lower than the scratch model's by more than the seed "
                                        "spread.")]),
             "", *_time_section(study)]
    if missing:
        lines += ["## Not run yet", "", *missing, ""]
    lines += _commands_section(study)
    return "\n".join(lines)
