"""CLI for `posecli eval` (thin: parsing only)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from posecli.cli.output import JSON, QUIET, human_console, print_json
from posecli.errors import PoseCliError


def _default_out(source: Path, data: Path) -> Path:
    """reports/<run>-<cache>: a checkpoint is named after its run folder (every run has a
    last.ckpt), a bundled model or predictions file after itself."""
    name = source.stem
    if source.suffix == ".ckpt" and source.parent.name:
        name = source.parent.name if source.stem == "last" else f"{source.parent.name}-{source.stem}"
    return Path("reports") / f"{name}-{data.stem}"


def eval_command(
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", "-c",
                                             help="Checkpoint file or bundled model name to evaluate."),
    predictions: Optional[Path] = typer.Option(None, "--predictions", "-p",
                                               help="Predictions NPZ (docs/evaluation.md) to evaluate instead."),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="Cache (.h5) with 3D ground truth."),
    protocols: Optional[str] = typer.Option(
        None, "--protocols", help="Comma list of p1, p2, n, vel, pck, auc, snm, pck2d, pckh "
        "(default: p1,p2,n,vel,pck,auc; image models: snm,p1,p2,n,pck,pck2d,pckh, or pck2d,pckh on 2D data)."),
    flip: bool = typer.Option(False, "--flip", help="Flip test-time augmentation."),
    upright: bool = typer.Option(True, "--upright/--no-upright",
                                 help="Lifters: turn windows whose torso leans more than training did upright "
                                      "before lifting, and the 3D back (as infer does)."),
    every: int = typer.Option(1, "--every", min=1, help="Score every N-th frame of each sequence (study: 10)."),
    subjects: Optional[str] = typer.Option(None, "--subjects",
                                           help="Comma list of subjects (default: S9,S11 on Human3.6M, else all)."),
    stride: Optional[int] = typer.Option(
        None, "--stride", help="stformer: frames between windows (default window/2); tcn: outputs per chunk."),
    batch_size: int = typer.Option(64, "--batch-size", help="Windows per forward pass."),
    input_noise: float = typer.Option(
        0.0, "--input-noise", metavar="LEVEL",
        help="Corrupt the 2D input like a detector (0 = clean, 1 = the training noise model; fixed seed)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Report folder.",
                                     show_default="reports/<run>-<cache>, e.g. reports/finetune-cmu-mocap-test"),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto."),
    compare: Optional[tuple[Path, Path]] = typer.Option(None, "--compare",
                                                        help="Show two report.json files side by side."),
    quiet: bool = QUIET, as_json: bool = JSON,
) -> None:
    """Evaluate a model or predictions on a cache (MPJPE, P-MPJPE, N-MPJPE, MPJVE, PCK, AUC; image
    models also SN-MPJPE and 2D PCK@0.2 / PCKh@0.5, on photo caches too)."""
    from posecli.eval.report import check_report_folder, compare_table, load_report, print_report, write_report

    console = human_console(quiet, as_json)
    if compare:
        a, b = compare
        console.print(compare_table(load_report(a), load_report(b), str(a), str(b)))
        if as_json:
            print_json({"a": {"path": a, "report": load_report(a)}, "b": {"path": b, "report": load_report(b)}})
        return
    if (checkpoint is None) == (predictions is None):
        raise PoseCliError("give exactly one of --checkpoint and --predictions (or --compare A B)")
    if data is None:
        raise PoseCliError("--data CACHE.h5 is required")
    from posecli.eval.protocols import (
        PREDICTION_PROTOCOLS,
        evaluate_checkpoint,
        evaluate_predictions,
        parse_protocols,
    )

    keys = parse_protocols(protocols) if protocols else None
    out = check_report_folder(out or _default_out(Path(predictions or checkpoint), data))
    subject_list = [s.strip() for s in subjects.split(",") if s.strip()] if subjects else None
    if predictions is not None:
        if input_noise:
            raise PoseCliError("--input-noise needs --checkpoint (it corrupts the model's 2D input)")
        result = evaluate_predictions(predictions, data, protocols=keys or PREDICTION_PROTOCOLS,
                                      subjects=subject_list, every=every)
    else:
        with Progress(TextColumn("lifting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=human_console(quiet, as_json, stderr=True), transient=True) as bar:
            task = bar.add_task("lift", total=None)
            result = evaluate_checkpoint(
                checkpoint, data, protocols=keys, subjects=subject_list, flip=flip, upright=upright, stride=stride,
                batch_size=batch_size, device=device, every=every, input_noise=input_noise,
                progress=lambda done, total: bar.update(task, completed=done, total=total))
    folder = write_report(result, out)
    print_report(result.report, console)
    console.print(f"report written to {folder}", markup=False)
    if as_json:
        print_json({"report_dir": folder, "report_json": folder / "report.json", **result.report})


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
