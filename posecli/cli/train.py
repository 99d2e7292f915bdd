"""CLI for `posecli pretrain` and `posecli finetune` (thin: parsing only; see posecli.engine.trainer)."""

from __future__ import annotations

from pathlib import Path

import typer

from posecli.cli.output import JSON, QUIET, human_console, print_json
from posecli.config import apply_run_options, load_config, parse_override
from posecli.engine.schedule import rescale_schedule
from posecli.engine.trainer import train

DEVICES = ("auto", "cpu", "cuda", "mps")


def _device(value: str) -> str:
    if value not in DEVICES and not value.startswith("cuda:"):
        raise typer.BadParameter(f"choose one of {', '.join(DEVICES)}")
    return value


# Options shared by both commands (typer option objects can be reused across signatures).
SETS = typer.Option([], "--set", help="Override a preset key: --set train.lr=1e-4 (repeatable).")
RUN_DIR = typer.Option(None, "--run-dir", help="Output folder (default runs/<preset>).")
RESUME = typer.Option(False, "--resume", help="Continue from run-dir/last.ckpt.")
DEVICE = typer.Option("auto", "--device", callback=_device, help="auto|cpu|cuda|mps.")
COMPILE = typer.Option(False, "--compile", help="torch.compile the model.")
STEPS = typer.Option(None, "--steps", min=1,
                     help="Total optimizer steps (train.steps); the warm-up shrinks to at most 10 % of them "
                          "and step milestones scale along (docs/training.md).")
DATA = typer.Option(None, "--data", help="Training cache(s), replacing the preset's (repeatable).")
VAL = typer.Option(None, "--val", help="Validation cache.")


def _check_objective(cfg: dict, preset: str) -> None:
    """Build the preset's objective once up front, so an unusable one (e.g. no weighted term) is
    reported with the preset file that says so, before any work."""
    from posecli.config import find_preset
    from posecli.errors import PoseCliError
    from posecli.families import family_of_model

    try:
        family_of_model(cfg["model"]["name"]).build_objective(cfg["objective"])
    except PoseCliError as exc:
        if exc.path is not None:
            raise
        raise PoseCliError(str(exc), find_preset(preset)) from None


def _run(preset: str, sets: list[str], run_dir: Path | None, resume: bool, device: str, compile: bool,
         steps: int | None, data: list[str] | None, val: str | None, init_from: str | None = None,
         quiet: bool = False, as_json: bool = False) -> None:
    cfg = load_config(preset, sets)
    _check_objective(cfg, preset)
    cfg = apply_run_options(cfg, data=data, val=val, compile=True if compile else None)
    if steps is not None:
        explicit = {keys[1] for keys, _ in map(parse_override, sets) if len(keys) == 2 and keys[0] == "train"}
        cfg = {**cfg, "train": rescale_schedule(cfg["train"], steps, keep=explicit)}
    result = train(cfg, run_dir or Path("runs") / Path(preset).stem, resume=resume,
                   init_from=Path(init_from) if init_from else None, device=device,
                   progress=not (quiet or as_json), console=human_console(quiet, as_json))
    if as_json:
        print_json({"run_dir": result.run_dir, "steps": result.step, "final_loss": result.final_loss,
                    "val_metric": result.val_metric, "best_val": result.best_val,
                    "frames_per_s": result.frames_per_s, "last_checkpoint": result.last_checkpoint,
                    "best_checkpoint": result.best_checkpoint})


def register(app: typer.Typer) -> None:
    @app.command()
    def pretrain(
        preset: str = typer.Option("pretrain-2d", "--preset", help="Preset name (presets/) or YAML path."),
        sets: list[str] = SETS, run_dir: Path = RUN_DIR, resume: bool = RESUME, device: str = DEVICE,
        compile: bool = COMPILE, steps: int = STEPS, data: list[str] = DATA, val: str = VAL,
        quiet: bool = QUIET, as_json: bool = JSON,
    ) -> None:
        """2D pretraining (masked pose modelling + self-supervised lifting) with a preset."""
        _run(preset, sets, run_dir, resume, device, compile, steps, data, val, quiet=quiet, as_json=as_json)

    @app.command()
    def finetune(
        dataset: str = typer.Argument(..., help="h36m or cmu: selects preset finetune-<DATASET>."),
        init_from: str = typer.Option(None, "--from", help="Checkpoint to start from (train.init_from)."),
        preset: str = typer.Option(None, "--preset", help="Preset instead of finetune-<DATASET>."),
        sets: list[str] = SETS, run_dir: Path = RUN_DIR, resume: bool = RESUME, device: str = DEVICE,
        compile: bool = COMPILE, steps: int = STEPS, data: list[str] = DATA, val: str = VAL,
        quiet: bool = QUIET, as_json: bool = JSON,
    ) -> None:
        """3D fine-tuning (MPJPE + velocity + bone losses), usually from a pretrained checkpoint."""
        _run(preset or f"finetune-{dataset}", sets, run_dir, resume, device, compile, steps, data, val,
             init_from, quiet=quiet, as_json=as_json)
