"""CLI for `posecli infer VIDEO` and `posecli export onnx` (thin: parsing only)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from posecli.cli.output import JSON, QUIET, human_console, print_json

console = Console(stderr=True)
export_app = typer.Typer(help="Export a model for other runtimes.", no_args_is_help=True, rich_markup_mode=None,
                         context_settings={"help_option_names": ["-h", "--help"]})


def infer(
    video: str = typer.Argument(..., help="Video file (anything FFmpeg decodes), a folder or quoted glob of "
                                          "images (each lifted on its own), or a camera (/dev/video0) or stream "
                                          "URL (rtsp://...), recorded into the output folder first."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (<stem>-2, -3, ... when the default "
                                    "holds an earlier run).", show_default="runs/infer/<video stem>"),
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
    fix_sides: bool = typer.Option(True, "--fix-sides/--no-fix-sides",
                                   help="Keep left/right labels with the body where the 2D mirrors them for some frames."),
    upright: bool = typer.Option(True, "--upright/--no-upright",
                                 help="Lifter: turn windows whose torso leans more than training did (tilted camera, "
                                      "lying person) upright before lifting, and the 3D back."),
    max_gap: int = typer.Option(10, "--max-gap", help="Interpolate gaps up to N frames; longer ones are missing."),
    model: str = typer.Option("auto", "--model",
                              help="lifter | image | auto (the checkpoint's family); image needs an image checkpoint."),
    quiet: bool = QUIET, as_json: bool = JSON,
    focal: float | None = typer.Option(None, "--focal", help="Camera focal length in pixels [default: video "
                                       "metadata, else the image diagonal]."),
    fov: float | None = typer.Option(None, "--fov", help="Horizontal field of view in degrees (instead of --focal)."),
    fix_feet: bool = typer.Option(False, "--fix-feet", help="Remove foot sliding while a foot is in contact."),
    bvh: bool = typer.Option(False, "--bvh", help="Also write a BVH per track (Blender, Unity, MotionBuilder)."),
    trc: bool = typer.Option(False, "--trc", help="Also write a TRC per track (OpenSim)."),
    fill_gaps: bool = typer.Option(False, "--fill-gaps", help="BVH: interpolate missing frames inside a track."),
    render_view: str = typer.Option("follow", "--render-view", help="Render's 3D view: follow (the person) or fixed."),
    max_frames: int | None = typer.Option(None, "--max-frames", help="Camera or stream: stop after N frames "
                                          "(or press Ctrl-C); the frames so far are processed."),
) -> None:
    """Estimate 3D poses in a video: poses.npz/json, per-track CSV, viewer.html, optional MP4."""
    from posecli.infer.pipeline import InferOptions, next_free_folder, run_inference
    from posecli.infer.stream import is_stream, stream_name

    options = InferOptions(checkpoint=checkpoint, keypoints=keypoints, render=render, viewer=viewer,
                           smooth=smooth, device=device, max_people=max_people, flip=flip, fix_sides=fix_sides,
                           upright=upright, max_gap=max_gap,
                           model=model, focal=focal, fov=fov, fix_feet=fix_feet, bvh=bvh, trc=trc,
                           fill_gaps=fill_gaps, render_follow=_render_follow(render_view), overwrite=force,
                           max_frames=max_frames)
    console = human_console(quiet, as_json, stderr=True)
    name = stream_name(video) if is_stream(video) else Path(video).stem
    result = run_inference(video, out or next_free_folder(Path("runs/infer") / name), options, console=console)
    poses = result.poses
    table = Table(title=f"posecli infer: {name if is_stream(video) else Path(video).name}", show_header=True)
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("frames/s", justify="right")
    for stage, seconds in result.timings.items():
        if seconds > 0:
            table.add_row(stage, f"{seconds:.2f}", f"{result.rate(stage):.1f}")
    table.add_row("total", f"{result.wall:.2f}", f"{poses.num_frames / max(result.wall, 1e-9):.1f}")
    console.print(table)
    console.print(f"{counted(poses.num_frames, 'frame')}, {counted(result.detections, 'detection')}, "
                  f"{counted(poses.num_tracks, 'track')}, {counted(int(poses.valid.sum()), 'track-frame')} with a "
                  f"pose ({int(poses.interpolated.sum())} interpolated, {result.relabelled} with left/right "
                  f"relabelled)")
    for path in result.files:
        console.print(f"  {path}", markup=False, highlight=False)
    if as_json:
        print_json({"out_dir": result.out_dir, "frames": poses.num_frames, "detections": result.detections,
                    "tracks": poses.num_tracks, "track_frames": int(poses.valid.sum()),
                    "interpolated": int(poses.interpolated.sum()), "relabelled": result.relabelled,
                    "files": result.files,
                    "seconds": result.wall, "stage_seconds": result.timings})


def counted(n: int, noun: str) -> str:
    """'1 frame', '2 frames': English counts in summary lines."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _render_follow(view: str) -> bool:
    from posecli.errors import PoseCliError

    if view not in ("follow", "fixed"):
        raise PoseCliError(f"--render-view must be follow or fixed, got '{view}'")
    return view == "follow"


@export_app.command("onnx")
def export_onnx_cmd(
    checkpoint: str = typer.Option("default", "--checkpoint", "-c", help="Checkpoint path or bundled model name."),
    output: Path = typer.Option(Path("model.onnx"), "--output", "-o", help="ONNX file to write."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset version."),
) -> None:
    """Export a lifter to ONNX: input [batch, window, 17, 3] -> pose3d, dynamic batch."""
    from posecli.infer.export import check_opset, export_onnx, load_lifter
    from posecli.output_path import check_output_file

    check_opset(opset)
    check_output_file(output, create_parents=False)
    model = load_lifter(checkpoint)
    export_onnx(model, output, opset=opset)
    console.print(f"wrote {output} (input [batch, {model.window}, 17, 3], dynamic batch, opset {opset})", markup=False)


@export_app.command("bundle")
def export_bundle_cmd(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="Training checkpoint to package."),
    name: str = typer.Option("default", "--name", help="Bundled model name (`--checkpoint NAME` later)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Folder for NAME.safetensors + NAME.json."),
    into_package: bool = typer.Option(False, "--into-package",
                                      help="Write into the installed package's assets instead of --output "
                                           "(replaces what `--checkpoint NAME` loads for everyone)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing bundle of that name."),
) -> None:
    """Package a checkpoint as safetensors weights + JSON metadata (how the default model ships)."""
    from posecli.engine.checkpoint import ASSETS, export_bundled
    from posecli.errors import PoseCliError
    from posecli.infer.export import check_bundle_name

    if (output is None) == (not into_package):
        raise PoseCliError("give exactly one of --output FOLDER and --into-package "
                           f"(e.g. posecli export bundle -c {checkpoint} -o bundles/)")
    weights, meta = export_bundled(checkpoint, ASSETS if into_package else output, name=check_bundle_name(name),
                                   force=force)
    console.print(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB) and {meta}", markup=False)


def register(app: typer.Typer) -> None:
    from posecli.cli import motion

    app.command("infer")(infer)
    motion.register(export_app)
    app.add_typer(export_app, name="export")
