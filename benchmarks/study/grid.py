"""The study's grid: which runs, with which preset and overrides, and how long they should take.

Every run is a preset plus `--set` overrides (train.steps among them) and the CLI shortcuts (--data,
--val, --from), so the library call (load_config + apply_run_options + train) and the printed `posecli` command are
the same thing. Run names encode what distinguishes a run (architecture, initialisation, 3D budget,
seed), so groups that need the same run share it.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from posecli.config import load_config, section
from posecli.errors import PoseCliError

GROUPS = ("budgets", "ablations", "data", "arch", "robustness")
BUDGETS = (0.01, 0.1, 1.0)          # share of the CMU train takes used for 3D fine-tuning
SINGLE_BUDGET = 0.1                 # the budget at which ablations, 2D data and architectures are compared
PROTOCOLS = ("p1", "p2")
CACHE_FILES = {"train3d": "mocap-train.h5", "test3d": "mocap-test.h5", "coco": "coco-train.h5",
               "mpii": "mpii-train.h5"}
# Pretraining variants: objective overrides and which 2D caches they read.
PRETRAIN_VARIANTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "both": ((), ("coco", "mpii")),
    "masked": (("objective.lifting=0",), ("coco", "mpii")),
    "lifting": (("objective.masked=0",), ("coco", "mpii")),
    "coco": ((), ("coco",)),
}
VARIANT_LABELS = {"scratch": "no pretraining (scratch)", "main": "masked + lifting, COCO + MPII",
                  "both": "masked + lifting, COCO + MPII", "masked": "masked modelling only",
                  "lifting": "self-supervised lifting only", "coco": "masked + lifting, COCO only"}
# Tiny models and batches for --quick (tests): every run takes a fraction of a second.
QUICK_SETS = ("model.window=9", "model.dim=16", "model.depth=1", "model.heads=2", "train.batch_size=8")
# Seconds per optimizer step measured on the project's 2-core CPU (1 thread, shared machine) for the
# reference shapes (batch x frames per sample), and lifting cost per frame; other shapes scale by frames.
STEP_SECONDS = {("finetune", "stformer"): (0.62, 32 * 27), ("finetune", "tcn"): (0.03, 32 * 27),
                ("pretrain", "stformer"): (0.20, 128 * 1), ("pretrain", "tcn"): (0.13, 128 * 27)}
LIFT_SECONDS_PER_FRAME = {"stformer": 3.8e-4, "tcn": 2.5e-5}


@dataclass(frozen=True)
class StudyOptions:
    """What the study script was asked for (benchmarks/study.py's options)."""

    out: Path = Path("runs/study")
    docs: Path = Path("docs")
    caches: Path = Path("caches")
    steps: int = 600                  # fine-tuning steps per run
    pretrain_steps: int = 600         # steps of each pretraining the study trains itself
    seeds: int = 3                    # seeds of the 1 % and 10 % budgets
    single_seeds: int = 1             # seeds of the 100 % budget and the ablation/data/arch groups
    only: tuple[str, ...] = GROUPS
    pretrained: Path | None = None    # existing checkpoint for the main (COCO + MPII, both objectives) arm
    noise_level: float = 1.0          # robustness: posecli.eval.protocols.noisy_input level
    val_sequences: int = 8            # validation during fine-tuning: this many test sequences
    val_points: int = 10              # validations per fine-tuning run (the compute curves)
    quick: bool = False
    device: str = "auto"

    def cache(self, key: str) -> str:
        return str(self.caches / CACHE_FILES[key])


@dataclass
class RunSpec:
    """One training run (and its evaluations): a preset, overrides and where it initialises from."""

    name: str
    kind: str                              # pretrain | finetune
    preset: str
    sets: tuple[str, ...]
    data: tuple[str, ...]
    val: str | None
    steps: int
    init: str | None = None                # name of the pretrain run it starts from (None = scratch)
    info: dict[str, Any] = field(default_factory=dict)   # arch, init, fraction, seed, variant
    groups: set[str] = field(default_factory=set)
    evals: tuple[float, ...] = ()          # input-noise levels to evaluate at (0 = clean 2D)

    def key(self) -> dict[str, Any]:
        """What must match for a finished run folder to count as this run."""
        d = asdict(self)
        return {k: d[k] for k in ("kind", "preset", "sets", "data", "val", "steps", "init")}

    def command(self, out: Path, init_path: str | None) -> str:
        """The `posecli` command line that trains this run."""
        head = ["posecli", "pretrain"] if self.kind == "pretrain" else ["posecli", "finetune", "cmu"]
        # train.steps, not --steps: the study keeps each preset's warm-up (--steps would shorten it)
        args = [*head, "--preset", self.preset, "--run-dir", str(out / self.name), "--set", f"train.steps={self.steps}"]
        for path in self.data:
            args += ["--data", path]
        if self.val:
            args += ["--val", self.val]
        if init_path:
            args += ["--from", init_path]
        for s in self.sets:
            args += ["--set", s]
        return shlex.join(args)


def study_command(opts: StudyOptions) -> str:
    """The benchmarks/study.py command line that reproduces the whole study."""
    args = ["python", "benchmarks/study.py", "--steps", str(opts.steps), "--pretrain-steps", str(opts.pretrain_steps),
            "--seeds", str(opts.seeds), "--single-seeds", str(opts.single_seeds), "--noise-level",
            f"{opts.noise_level:g}", "--val-sequences", str(opts.val_sequences), "--caches", str(opts.caches),
            "--out", str(opts.out), "--docs", str(opts.docs)]
    if opts.pretrained is not None:
        args += ["--pretrained", str(opts.pretrained)]
    if tuple(opts.only) != GROUPS:
        args += ["--only", ",".join(opts.only)]
    if opts.quick:
        args.append("--quick")
    return shlex.join(args)


def eval_command(out: Path, run: str, test: str, noise: float) -> str:
    """The `posecli eval` command line that gives a run's test numbers."""
    args = ["posecli", "eval", "--checkpoint", str(out / run / "last.ckpt"), "--data", test,
            "--protocols", ",".join(PROTOCOLS), "--device", "cpu", "--out", str(out / run / f"report-noise{noise:g}")]
    if noise:
        args += ["--input-noise", f"{noise:g}"]
    return shlex.join(args)


def budget_label(fraction: float) -> str:
    return f"{fraction * 100:g}pct"


def matched_tcn_channels(model_cfg: dict[str, Any]) -> tuple[int, int, int]:
    """(channels, tcn parameters, stformer parameters): the tcn width (a multiple of 8) whose
    parameter count is closest to the stformer's at the same window."""
    from posecli.models import build_model, count_parameters

    target = count_parameters(build_model(model_cfg))
    tcn = {"name": "tcn", "window": int(model_cfg["window"]), "dropout": model_cfg.get("dropout", 0.1)}
    best: tuple[int, int] | None = None
    for channels in range(8, 2049, 8):
        params = count_parameters(build_model({**tcn, "channels": channels}))
        if best is None or abs(params - target) < abs(best[1] - target):
            best = (channels, params)
        if params > target:
            break
    assert best is not None
    return best[0], best[1], target


def _common_sets(opts: StudyOptions, steps: int, log_every: int, extra: tuple[str, ...]) -> tuple[str, ...]:
    sets = [f"train.warmup_steps={max(1, steps // 10)}", f"train.log_every={log_every}",
            f"train.ckpt_every={log_every}", "train.tensorboard=false", *extra]
    return tuple([*QUICK_SETS, *sets] if opts.quick else sets)


class _Planner:
    """Builds the run list; runs asked for twice are merged (groups and evaluations united)."""

    def __init__(self, opts: StudyOptions):
        self.opts = opts
        self.runs: dict[str, RunSpec] = {}
        base = load_config("finetune-cmu", QUICK_SETS if opts.quick else ())
        self.model = section(base, "model")
        self.batch_size = int(section(base, "train")["batch_size"])
        self.tcn_channels, self.tcn_params, self.stformer_params = matched_tcn_channels(self.model)

    def _add(self, spec: RunSpec) -> RunSpec:
        if spec.name in self.runs:
            have = self.runs[spec.name]
            have.groups |= spec.groups
            have.evals = tuple(sorted(set(have.evals) | set(spec.evals)))
            return have
        self.runs[spec.name] = spec
        return spec

    def arch_sets(self, arch: str) -> tuple[str, ...]:
        if arch == "stformer":
            return ()
        unset = tuple(f"model.{k}=null" for k in ("dim", "depth", "heads")) if self.opts.quick else ()
        return ("model.name=tcn", f"model.channels={self.tcn_channels}", *unset)

    def equal_frames_batch(self, arch: str) -> tuple[str, ...]:
        """The tcn predicts the centre frame of each window, stformer every frame: a tcn batch of
        batch x window windows gives both the same supervised 3D frames per fine-tuning step."""
        if arch == "stformer":
            return ()
        return (f"train.batch_size={self.batch_size * int(self.model['window'])}",)

    def pretrain(self, variant: str, arch: str, group: str) -> str:
        """Name of the pretraining run; 'main' is the --pretrained checkpoint when one is given."""
        opts = self.opts
        if variant == "main" and opts.pretrained is not None and arch == "stformer":
            return "main"
        if variant == "main":
            variant = "both"
        objective, caches = PRETRAIN_VARIANTS[variant]
        window = () if arch == "stformer" else (f"data.window={self.model['window']}",)
        steps = opts.pretrain_steps
        name = f"pretrain-{arch}-{variant}"
        self._add(RunSpec(name, "pretrain", "pretrain-2d",
                          _common_sets(opts, steps, max(1, steps // 20),
                                       ("train.seed=0", *objective, *self.arch_sets(arch), *window)),
                          tuple(opts.cache(c) for c in caches), None, steps,
                          info={"arch": arch, "variant": variant}, groups={group}))
        return name

    def finetune(self, arch: str, init: str, fraction: float, seed: int, group: str,
                 evals: tuple[float, ...] = (0.0,)) -> RunSpec:
        opts = self.opts
        every = max(1, opts.steps // max(1, opts.val_points))
        source = None if init == "scratch" else self.pretrain(init, arch, group)
        name = f"ft-{arch}-{init}-{budget_label(fraction)}-s{seed}"
        sets = (f"train.seed={seed}", f"data.fraction={fraction:g}", f"data.fraction_seed={seed}",
                f"data.val_sequences={opts.val_sequences}", f"train.val_every={every}", *self.arch_sets(arch),
                *self.equal_frames_batch(arch))
        return self._add(RunSpec(
            name, "finetune", "scratch-cmu" if source is None else "finetune-cmu",
            _common_sets(opts, opts.steps, every, sets), (opts.cache("train3d"),), opts.cache("test3d"),
            opts.steps, source, info={"arch": arch, "init": init, "fraction": fraction, "seed": seed},
            groups={group}, evals=evals))


def plan(opts: StudyOptions) -> tuple[list[RunSpec], dict[str, Any]]:
    """All runs of the selected groups, pretraining runs first, and facts the report needs
    (parameter counts, the tcn width, seeds)."""
    unknown = [g for g in opts.only if g not in GROUPS]
    if unknown:
        raise PoseCliError(f"unknown study group '{unknown[0]}' (known: {', '.join(GROUPS)})")
    if opts.seeds < 1 or opts.single_seeds < 1 or opts.steps < 1 or opts.pretrain_steps < 1:
        raise PoseCliError("--seeds, --steps and --pretrain-steps must be at least 1")
    if opts.pretrained is not None and not Path(opts.pretrained).is_file():
        raise PoseCliError("pretrained checkpoint not found", opts.pretrained)
    p = _Planner(opts)
    if opts.pretrained is not None:
        check_pretrained(Path(opts.pretrained), p.model)
    seeds = list(range(opts.seeds))
    single = seeds[:opts.single_seeds] if opts.single_seeds <= opts.seeds else list(range(opts.single_seeds))
    both = "main" if opts.pretrained is None else "both"   # pretrained with the study's own steps
    if "budgets" in opts.only or "robustness" in opts.only:
        evals = (0.0, opts.noise_level) if "robustness" in opts.only else (0.0,)
        group = "budgets" if "budgets" in opts.only else "robustness"
        for fraction in BUDGETS:
            for seed in (single if fraction >= 1.0 else seeds):
                for init in ("main", "scratch"):
                    p.finetune("stformer", init, fraction, seed, group, evals)
    for seed in single:
        if "ablations" in opts.only:
            for init in ("scratch", "masked", "lifting", both):
                p.finetune("stformer", init, SINGLE_BUDGET, seed, "ablations")
        if "data" in opts.only:
            for init in ("scratch", "coco", both):
                p.finetune("stformer", init, SINGLE_BUDGET, seed, "data")
        if "arch" in opts.only:
            for arch in ("stformer", "tcn"):
                for init in ("scratch", both if arch == "stformer" else "main"):
                    p.finetune(arch, init, SINGLE_BUDGET, seed, "arch")
    runs = sorted(p.runs.values(), key=lambda r: (r.kind != "pretrain", r.name))
    facts = {"tcn_channels": p.tcn_channels, "params": {"stformer": p.stformer_params, "tcn": p.tcn_params},
             "seeds": seeds, "single_seeds": single, "both": both, "model": p.model}
    return runs, facts


def check_pretrained(path: Path, model: dict[str, Any]) -> None:
    """The --pretrained checkpoint must have the fine-tuning model's architecture, or most of its
    tensors would be skipped silently and the 'pretrained' arm would really start from scratch."""
    from posecli.engine.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    have = section(ckpt["config"], "model")
    if have != model:
        raise PoseCliError(f"pretrained checkpoint has model {have}, the study fine-tunes {model}", path)
    step, steps = int(ckpt.get("state", {}).get("step", 0)), int(ckpt["config"]["train"]["steps"])
    if step < steps:
        raise PoseCliError(f"pretrained checkpoint is at step {step} of {steps}: let its training finish", path)


def estimate_seconds(run: RunSpec, opts: StudyOptions, test_frames: int, val_frames: int) -> float:
    """Expected wall time of one run from the measured step costs (upper bound for --quick)."""
    cfg = load_config(run.preset, run.sets)
    arch, tc = cfg["model"]["name"], cfg["train"]
    seconds, frames_ref = STEP_SECONDS[(run.kind, arch)]
    window = cfg["data"]["window"] or cfg["model"]["window"]
    total = run.steps * seconds * (int(tc["batch_size"]) * int(window)) / frames_ref
    if run.kind == "finetune":
        validations = math.ceil(run.steps / int(tc["val_every"]))
        total += LIFT_SECONDS_PER_FRAME[arch] * (validations * val_frames + len(run.evals) * test_frames)
    return total
