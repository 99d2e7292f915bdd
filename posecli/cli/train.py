"""CLI for `posecli pretrain` and `posecli finetune` (thin: parsing only; see posecli.engine.trainer)."""

from __future__ import annotations

from pathlib import Path

import typer

from posecli.config import apply_run_options, load_config
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
STEPS = typer.Option(None, "--steps", min=1, help="Total optimizer steps (train.steps).")
DATA = typer.Option(None, "--data", help="Training cache(s), replacing the preset's (repeatable).")
VAL = typer.Option(None, "--val", help="Validation cache.")


def _run(preset: str, sets: list[str], run_dir: Path | None, resume: bool, device: str, compile: bool,
         steps: int | None, data: list[str] | None, val: str | None, init_from: str | None = None) -> None:
    cfg = load_config(preset, sets)
    cfg = apply_run_options(cfg, data=data, val=val, steps=steps, compile=True if compile else None)
    train(cfg, run_dir or Path("runs") / Path(preset).stem, resume=resume,
          init_from=Path(init_from) if init_from else None, device=device)


def register(app: typer.Typer) -> None:
    @app.command()
    def pretrain(
        preset: str = typer.Option("pretrain-2d", "--preset", help="Preset name (presets/) or YAML path."),
        sets: list[str] = SETS, run_dir: Path = RUN_DIR, resume: bool = RESUME, device: str = DEVICE,
        compile: bool = COMPILE, steps: int = STEPS, data: list[str] = DATA, val: str = VAL,
    ) -> None:
        """2D pretraining (masked pose modelling + self-supervised lifting) with a preset."""
        _run(preset, sets, run_dir, resume, device, compile, steps, data, val)

    @app.command()
    def finetune(
        dataset: str = typer.Argument(..., help="h36m or cmu: selects preset finetune-<DATASET>."),
        init_from: str = typer.Option(None, "--from", help="Checkpoint to start from (train.init_from)."),
        preset: str = typer.Option(None, "--preset", help="Preset instead of finetune-<DATASET>."),
        sets: list[str] = SETS, run_dir: Path = RUN_DIR, resume: bool = RESUME, device: str = DEVICE,
        compile: bool = COMPILE, steps: int = STEPS, data: list[str] = DATA, val: str = VAL,
    ) -> None:
        """3D fine-tuning (MPJPE + velocity + bone losses), usually from a pretrained checkpoint."""
        _run(preset or f"finetune-{dataset}", sets, run_dir, resume, device, compile, steps, data, val,
             init_from)
