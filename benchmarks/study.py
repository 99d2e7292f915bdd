"""The evidence study: 2D pretraining vs training from scratch, on open data, end to end.

    python benchmarks/study.py --pretrained runs/pretrain-2d/last.ckpt     # the default grid
    python benchmarks/study.py --only budgets,robustness --seeds 5          # part of it
    python benchmarks/study.py --quick --caches DIR --out DIR --docs DIR     # tiny (tests)

Runs every fine-tuning/pretraining run of the grid through posecli's library (load_config +
overrides, train, evaluate_checkpoint) into the study folder, skips runs that are already finished
(final checkpoint + evaluation files), resumes a run that was killed, and writes results.md with
the tables, commands and findings plus two PNG plots into --docs. Groups: budgets (1/10/100 % of
the 3D takes, pretrained vs scratch), ablations (masked only, lifting only, both), data (COCO only
vs COCO + MPII), arch (stformer vs tcn at matched parameter counts), robustness (detector-like noise
on the 2D test input). The planned runs and their estimated time are printed before anything runs.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))   # the study/ package beside this script

from posecli.errors import PoseCliError  # noqa: E402
from study import (  # noqa: E402
    GROUPS,
    StudyOptions,
    collect,
    estimate_seconds,
    is_finished,
    plan,
    write_results,
)
from study.runner import run_all  # noqa: E402

QUICK = {"steps": 4, "pretrain_steps": 4, "seeds": 2, "single_seeds": 1, "val_sequences": 2, "val_points": 2}


def parse(argv: list[str] | None = None) -> tuple[StudyOptions, int, bool]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny models and a few steps per run (tests)")
    p.add_argument("--steps", type=int, help="fine-tuning steps per run (default 600)")
    p.add_argument("--pretrain-steps", type=int, help="steps of each pretraining the study trains (default 600)")
    p.add_argument("--seeds", type=int, help="seeds at the 1 %% and 10 %% budgets (default 3)")
    p.add_argument("--single-seeds", type=int, help="seeds at 100 %% and in ablations/data/arch (default 1)")
    p.add_argument("--only", default=",".join(GROUPS), help=f"comma list of groups: {', '.join(GROUPS)}")
    p.add_argument("--pretrained", type=Path, help="existing checkpoint for the main pretrained arm")
    p.add_argument("--noise-level", type=float, default=1.0, help="robustness: --input-noise level")
    p.add_argument("--val-sequences", type=int, help="test sequences validated during fine-tuning (default 8)")
    p.add_argument("--caches", type=Path, default=Path("caches"), help="folder of mocap/coco/mpii caches")
    p.add_argument("--out", type=Path, help="study folder (default runs/study, runs/study-quick with --quick)")
    p.add_argument("--docs", type=Path, help="where results.md and plots go (default docs, or OUT/docs with --quick)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--workers", type=int, default=1,
                   help="runs trained at once, one process each (on a CPU: workers x threads <= cores)")
    p.add_argument("--plan-only", action="store_true", help="print the plan and the estimate, run nothing")
    a = p.parse_args(argv)
    defaults = QUICK if a.quick else {}

    def pick(name: str):
        """The option as given, else its --quick value, else StudyOptions' default."""
        given = getattr(a, name, None)
        return given if given is not None else defaults.get(name, getattr(StudyOptions, name))

    out = a.out or Path("runs/study-quick" if a.quick else "runs/study")
    opts = StudyOptions(
        out=out, docs=a.docs or (out / "docs" if a.quick else Path("docs")), caches=a.caches,
        steps=pick("steps"), pretrain_steps=pick("pretrain_steps"), seeds=pick("seeds"),
        single_seeds=pick("single_seeds"), only=tuple(g.strip() for g in a.only.split(",") if g.strip()),
        pretrained=a.pretrained, noise_level=a.noise_level, val_sequences=pick("val_sequences"),
        val_points=pick("val_points"), quick=a.quick, device=a.device)
    if a.workers < 1:
        p.error("--workers must be at least 1")
    return opts, (1 if a.quick and not a.threads else a.threads), a.plan_only, a.workers


def main(argv: list[str] | None = None) -> int:
    console = Console()
    try:
        opts, threads, plan_only, workers = parse(argv)
        if threads:
            torch.set_num_threads(threads)
        runs, facts = plan(opts)
        from posecli.data.cache import open_cache
        from posecli.engine.validate import pick_sequences

        with open_cache(opts.cache("test3d")) as test:
            val_frames = int(sum(test.seq_length[i] for i in pick_sequences(test, opts.val_sequences)))
            test_frames = test.num_frames
        todo = [r for r in runs if not is_finished(opts, r)]
        estimate = sum(estimate_seconds(r, opts, test_frames, val_frames) for r in todo)
        console.print(f"study: {len(runs)} runs planned ({sum(r.kind == 'pretrain' for r in runs)} pretraining, "
                      f"{sum(r.kind == 'finetune' for r in runs)} fine-tuning), {len(runs) - len(todo)} already "
                      f"finished; estimated time for the rest: {estimate / 60:.0f} min "
                      f"(tcn {facts['tcn_channels']} channels = {facts['params']['tcn']:,} parameters vs "
                      f"stformer {facts['params']['stformer']:,})")
        for r in todo:
            console.print(f"  {r.name:<34} {r.kind:<9} {estimate_seconds(r, opts, test_frames, val_frames):6.0f} s"
                          f"  [{', '.join(sorted(r.groups))}]")
        if plan_only:
            return 0
        run_all(todo, opts, console, workers, threads)
        # the report covers every group finished in the study folder, not only this invocation's
        everything = replace(opts, only=GROUPS)
        written = write_results(collect(plan(everything)[0], facts, everything), opts.docs)
        console.print("wrote " + ", ".join(str(p) for p in written))
        return 0
    except PoseCliError as exc:
        console.print(f"[red]error: {exc}[/red]")
        return 2


if __name__ == "__main__":
    sys.exit(main())
