"""CLI for `posecli export bvh|trc|c3d POSES.npz` (thin: parsing only)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)


def _export(fmt: str):
    def command(
        poses: Path = typer.Argument(..., help="poses.npz written by `posecli infer`."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Output folder [default: beside POSES]."),
        focal: float | None = typer.Option(None, "--focal", help="Focal length in pixels (recomputes the world frame)."),
        fov: float | None = typer.Option(None, "--fov", help="Horizontal field of view in degrees (instead of --focal)."),
        fix_feet: bool = typer.Option(False, "--fix-feet", help="Remove foot sliding while a foot is in contact."),
        fill_gaps: bool = typer.Option(False, "--fill-gaps", help="Interpolate missing frames inside a track "
                                       "(BVH needs it for tracks with gaps; TRC/C3D otherwise write blanks)."),
    ) -> None:
        from posecli.infer.world_export import export_poses

        for path in export_poses(poses, (fmt,), out, focal=focal, fov=fov, fix_feet=fix_feet, fill_gaps=fill_gaps):
            console.print(f"wrote {path}")

    command.__doc__ = {
        "bvh": "BVH per track (Blender, Unity, MotionBuilder): joint rotations, world trajectory on the root, cm.",
        "trc": "TRC per track (OpenSim): Pose2Sim marker names, metres, y up, blank markers where missing.",
        "c3d": "C3D per track (needs ezc3d: pip install \"posecli[c3d]\"): the TRC's markers, metres, y up.",
    }[fmt]
    return command


def register(export_app: typer.Typer) -> None:
    for fmt in ("bvh", "trc", "c3d"):
        export_app.command(fmt)(_export(fmt))
