"""CLI for `posecli infer VIDEO` and `posecli export onnx` (thin: parsing only)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True)
export_app = typer.Typer(help="Export a model for other runtimes.", no_args_is_help=True)


def infer(
    video: Path = typer.Argument(..., help="Video file (anything FFmpeg decodes), or a folder or quoted glob "
                                           "of images (each lifted on its own)."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Output folder [default: runs/infer/<video stem>, or <stem>-2, -3, ... "
                                         "when that holds an earlier run]."),
    force: bool = typer.Option(False, "--force", help="Replace the results of an earlier run in --out."),
    checkpoint: str = typer.Option("default", "--checkpoint", "-c", help="Checkpoint path or bundled model name."),
    keypoints: Path | None = typer.Option(None, "--keypoints", help="Your own 2D: COCO/Halpe JSON, OpenPose folder or NPZ."),
    render: bool = typer.Option(False, "--render", help="Also write render.mp4 (2D on video + 3D view)."),
    viewer: bool = typer.Option(True, "--viewer/--no-viewer", help="Write the self-contained viewer.html."),
    smooth: float = typer.Option(1.0, "--smooth", help="One-Euro smoothing strength (0 = off)."),
    device: str = typer.Option("auto", "--device", help="Model device: auto, cpu, cuda, cuda:N, mps."),
    max_people: int = typer.Option(4, "--max-people",
                                   help="People followed per frame, and tracks kept (the most confident)."),
    flip: bool = typer.Option(False, "--flip", help="Flip test-time augmentation in the lifter."),
    max_gap: int = typer.Option(10, "--max-gap", help="Interpolate gaps up to N frames; longer ones are missing."),
    model: str = typer.Option("auto", "--model",
                              help="lifter | image | auto (the checkpoint's family); image needs an image checkpoint."),
) -> None:
    """Estimate 3D poses in a video: poses.npz/json, per-track CSV, viewer.html, optional MP4."""
    from posecli.infer.pipeline import InferOptions, next_free_folder, run_inference

    options = InferOptions(checkpoint=checkpoint, keypoints=keypoints, render=render, viewer=viewer,
                           smooth=smooth, device=device, max_people=max_people, flip=flip, max_gap=max_gap,
                           model=model, overwrite=force)
    result = run_inference(video, out or next_free_folder(Path("runs/infer") / video.stem), options,
                           console=console)
    poses = result.poses
    table = Table(title=f"posecli infer: {video.name}", show_header=True)
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("frames/s", justify="right")
    for stage, seconds in result.timings.items():
        if seconds > 0:
            table.add_row(stage, f"{seconds:.2f}", f"{result.rate(stage):.1f}")
    table.add_row("total", f"{result.wall:.2f}", f"{poses.num_frames / max(result.wall, 1e-9):.1f}")
    console.print(table)
    console.print(f"{poses.num_frames} frames, {result.detections} detections, {poses.num_tracks} tracks, "
                  f"{int(poses.valid.sum())} track-frames with a pose "
                  f"({int(poses.interpolated.sum())} interpolated)")
    for path in result.files:
        console.print(f"  {path}")


@export_app.command("onnx")
def export_onnx_cmd(
    checkpoint: str = typer.Option("default", "--checkpoint", "-c", help="Checkpoint path or bundled model name."),
    output: Path = typer.Option(Path("model.onnx"), "--output", "-o", help="ONNX file to write."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset version."),
) -> None:
    """Export a lifter to ONNX: input [batch, window, 17, 3] -> pose3d, dynamic batch."""
    from posecli.infer.export import export_onnx
    from posecli.infer.pipeline import load_lifter

    model = load_lifter(checkpoint)
    export_onnx(model, output, opset=opset)
    console.print(f"wrote {output} (input [batch, {model.window}, 17, 3], dynamic batch, opset {opset})")


@export_app.command("bundle")
def export_bundle_cmd(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="Training checkpoint to package."),
    name: str = typer.Option("default", "--name", help="Bundled model name (`--checkpoint NAME` later)."),
    output: Path = typer.Option(None, "--output", "-o",
                                help="Folder for NAME.safetensors + NAME.json (default: the package's assets)."),
) -> None:
    """Package a checkpoint as safetensors weights + JSON metadata (how the default model ships)."""
    from posecli.engine.checkpoint import ASSETS, export_bundled

    weights, meta = export_bundled(checkpoint, output or ASSETS, name=name)
    console.print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB) and {meta}")


def register(app: typer.Typer) -> None:
    app.command("infer")(infer)
    app.add_typer(export_app, name="export")
