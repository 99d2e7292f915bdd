"""CLI for `posecli prepare` and `posecli info` (thin: parsing only)."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer
from rich.console import Console

from posecli.cli.output import JSON, QUIET, human_console, print_json
from posecli.data.readers import FORMATS
from posecli.data.records import PrepareOptions

_FORMATS_HELP = "\n\n".join(f"{name}: {desc}" for name, (_, desc) in FORMATS.items())


def _command_line(fmt: str, inputs: list[Path], out: Path | None, options: PrepareOptions, force: bool,
                  crop_size: int = 256, crop_encoding: str = "raw") -> str:
    """The prepare call as a reproducible command line (stored in the cache's provenance)."""
    args = ["posecli", "prepare", fmt, *map(str, inputs)]
    defaults = PrepareOptions()
    if out is not None:
        args += ["-o", str(out)]
    for flag, value, default in (
        ("--split", options.split, defaults.split),
        ("--subjects", ",".join(options.subjects) if options.subjects else None, None),
        ("--exclude", str(options.exclude) if options.exclude else None, None),
        ("--cameras", options.cameras, defaults.cameras),
        ("--fps", options.fps, defaults.fps),
        ("--seed", options.seed, defaults.seed),
        ("--units", options.units, defaults.units),
        ("--detector", options.detector, defaults.detector),
        ("--bone-lengths", str(options.bone_lengths) if options.bone_lengths else None, None),
        ("--images", str(options.images) if options.images else None, None),
        ("--crop-size", crop_size if options.images else 256, 256),
        ("--crop-encoding", crop_encoding if options.images else "raw", "raw"),
    ):
        if value != default:
            args += [flag, str(value)]
    args += ["--allow-pickle"] * options.allow_pickle + ["--force"] * force
    return shlex.join(args)


def prepare_command(
    fmt: str = typer.Argument(..., metavar="FORMAT", help="Input format (see the list above)."),
    inputs: list[Path] = typer.Argument(..., metavar="INPUT...", help="Dataset file(s) or folder(s)."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Output cache (default caches/FORMAT-SPLIT.h5)."),
    split: str = typer.Option("all", "--split", help="Split name (train/val/test/all); format-specific meaning."),
    subjects: str | None = typer.Option(None, "--subjects", help="Comma-separated subjects, e.g. S9,S11."),
    exclude: Path | None = typer.Option(None, "--exclude",
                                        help="Drop images listed in this text file (or MPII/COCO file)."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Allow pickled inputs (trusted files only)."),
    cameras: int = typer.Option(4, "--cameras", min=1, help="Virtual cameras per mocap sequence."),
    fps: float | None = typer.Option(None, "--fps", min=0.0, help="Resample sequences to this frame rate."),
    seed: int = typer.Option(0, "--seed", help="Random seed (virtual cameras, sampling)."),
    units: float | None = typer.Option(None, "--units", min=0.0,
                                       help="Metres per BVH/ASF file unit (default: the ASF's :units, "
                                            "else guessed from body height)."),
    detector: str | None = typer.Option(None, "--detector",
                                        help="2D detections to use where a format has several (e.g. cpn_ft_h36m_dbb)."),
    bone_lengths: Path | None = typer.Option(
        None, "--bone-lengths", metavar="CACHE.h5",
        help="Mocap: give every take this 3D cache's median bone lengths, keeping bone directions "
             "(maps one rig's joint placement onto another's, e.g. a BVH rig onto Li-2018 CMU)."),
    images: Path | None = typer.Option(None, "--images",
                                       help="Folder of the photos/frames: store person crops (image family)."),
    crop_size: int = typer.Option(256, "--crop-size", help="Side of the stored crops in pixels (with --images)."),
    crop_encoding: str = typer.Option("raw", "--crop-encoding", help="raw (uint8) or jpeg (with --images)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
    quiet: bool = QUIET, as_json: bool = JSON,
) -> None:
    from posecli.data.prepare import prepare, summary_table

    options = PrepareOptions(
        split=split, subjects=[s.strip() for s in subjects.split(",") if s.strip()] if subjects else None,
        exclude=exclude, allow_pickle=allow_pickle, cameras=cameras, fps=fps, seed=seed, units=units, detector=detector,
        images=images, bone_lengths=bone_lengths)
    summary = prepare(fmt, inputs, out, options, force=force, crop_size=crop_size, crop_encoding=crop_encoding,
                      command=_command_line(fmt, inputs, out, options, force, crop_size, crop_encoding))
    human_console(quiet, as_json).print(summary_table(summary))
    if as_json:
        print_json(summary.__dict__)


def info_command(
    cache: Path = typer.Argument(..., metavar="CACHE.h5", help="A cache written by posecli prepare."),
    plot: Path | None = typer.Option(None, "--plot", help="Also draw a grid of sample poses to this image."),
    samples: int = typer.Option(16, "--samples", min=1, help="Poses in the --plot grid."),
) -> None:
    """Show a cache's schema, provenance, counts, coordinate ranges and per-joint missing rate."""
    from posecli.data.info import cache_info, check_plot_output, info_tables, plot_samples

    if plot is not None:
        check_plot_output(plot)
    console = Console()
    console.print(info_tables(cache_info(cache)))
    if plot is not None:
        console.print(f"plot: {plot_samples(cache, plot, count=samples)}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command(
        "prepare",
        help="Convert a dataset into a validated HDF5 cache (H36M-17 keypoints).\n\nFormats:\n\n" + _FORMATS_HELP,
    )(prepare_command)
    app.command("info")(info_command)
