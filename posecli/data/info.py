"""`posecli info`: what a cache holds and where it came from, as a dict (tests) and rich tables.

Also draws a grid of sample poses so a wrong joint order or unit is visible at a glance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from rich.console import Group
from rich.markup import escape
from rich.table import Table

from posecli.data.cache import PoseCache, open_cache
from posecli.atomic import atomic_output
from posecli.errors import PoseCliError
from posecli.output_path import check_output_file
from posecli.skeleton import H36M_BONES, H36M_JOINTS, JointStatus

PLOT_FORMATS = (".png", ".jpg", ".jpeg", ".pdf", ".svg")


def _json_attr(attrs: dict, key: str, default: Any) -> Any:
    value = attrs.get(key)
    if value is None:
        return default
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def _range(values: np.ndarray, axes: str) -> dict[str, list[float]] | None:
    if values.size == 0:
        return None
    lo, hi = values.min(axis=0), values.max(axis=0)
    return {axis: [float(lo[i]), float(hi[i])] for i, axis in enumerate(axes)}


def cache_info(path: str | Path) -> dict[str, Any]:
    """Schema, provenance, counts, coordinate ranges, per-joint missing rate and sequence lengths."""
    path = Path(path)
    with open_cache(path) as cache:
        with h5py.File(path, "r") as f:
            arrays = {name: {"shape": list(ds.shape), "dtype": str(ds.dtype)}
                      for name, ds in f.items() if isinstance(ds, h5py.Dataset)}
        attrs = cache.attrs
        valid = cache.confidence > 0
        lengths = cache.seq_length
        status = cache.joint_status
        info: dict[str, Any] = {
            "path": str(path),
            "schema_version": int(attrs["schema_version"]),
            "skeleton": str(attrs.get("skeleton", "")),
            "dataset": cache.dataset,
            "split": str(attrs.get("split", "")),
            "source_layout": str(attrs.get("source_layout", "")),
            "normalisation": str(attrs.get("normalisation", "")),
            "units": _json_attr(attrs, "units", {}),
            "arrays": arrays,
            "provenance": {
                "sources": _json_attr(attrs, "sources", []),
                "command": str(attrs.get("command", "")),
                "posecli_version": str(attrs.get("posecli_version", "")),
                "created": str(attrs.get("created", "")),
            },
            "counts": {
                "sequences": cache.num_sequences,
                "frames": cache.num_frames,
                "subjects": len(set(cache.subject)),
                "has3d": cache.has3d,
            },
            "ranges": {
                "keypoints2d": _range(cache.keypoints2d[valid], "xy"),
                "keypoints3d": None if cache.keypoints3d is None
                else _range(cache.keypoints3d.reshape(-1, 3), "xyz"),
            },
            "missing_rate": {name: float(1.0 - valid[:, j].mean()) if len(valid) else 1.0
                             for j, name in enumerate(H36M_JOINTS)},
            "joint_status": {name: JointStatus(int(status[j])).name.lower()
                             for j, name in enumerate(H36M_JOINTS)},
            "sequence_length": {"min": int(lengths.min()), "max": int(lengths.max()),
                                "mean": float(lengths.mean()), "median": float(np.median(lengths))},
            "fps": sorted({float(x) for x in cache.fps}),
            "dropped": _json_attr(attrs, "dropped", {}),
            "notes": _json_attr(attrs, "notes", []),
        }
    return info


def info_tables(info: dict[str, Any]) -> Group:
    """The info dict as rich tables: overview and provenance, then per joint."""
    overview = Table(title=escape(info["path"]), show_header=False)
    overview.add_column("key", style="bold")
    overview.add_column("value")
    counts, lengths = info["counts"], info["sequence_length"]
    rows = [
        ("dataset / split", f"{info['dataset']} / {info['split']}"),
        ("schema", f"v{info['schema_version']}, skeleton {info['skeleton']} (from {info['source_layout']}), "
                   f"normalisation {info['normalisation']}"),
        ("arrays", ", ".join(f"{k} {v['dtype']}{v['shape']}" for k, v in info["arrays"].items())),
        ("sequences / frames", f"{counts['sequences']:,} / {counts['frames']:,} "
                               f"({counts['subjects']:,} subjects, 3D: {'yes' if counts['has3d'] else 'no'})"),
        ("sequence length", f"min {lengths['min']}, median {lengths['median']:g}, "
                            f"mean {lengths['mean']:.1f}, max {lengths['max']}"),
        ("fps", ", ".join(f"{x:g}" for x in info["fps"]) + ("  (0 = photos / unknown)" if 0.0 in info["fps"] else "")),
    ]
    for key, axes in info["ranges"].items():
        if axes:
            rows.append((f"{key} range", ", ".join(f"{a} [{lo:.3g}, {hi:.3g}]" for a, (lo, hi) in axes.items())))
    prov = info["provenance"]
    for source in prov["sources"]:
        rows.append(("source", f"{source.get('name')}  sha256 {source.get('sha256', '')[:16]}…"))
    rows += [("command", prov["command"]), ("created", f"{prov['created']} by posecli {prov['posecli_version']}")]
    rows += [(f"dropped: {reason}", f"{n:,}") for reason, n in info["dropped"].items()]
    rows += [("note", note) for note in info["notes"]]
    for key, value in rows:
        overview.add_row(escape(key), escape(str(value)))
    status = np.array([JointStatus[info["joint_status"][n].upper()] for n in H36M_JOINTS], dtype=np.uint8)
    joints = joints_table(status, np.array([info["missing_rate"][n] for n in H36M_JOINTS]))
    return Group(overview, joints)


def joints_table(joint_status: np.ndarray, missing_rate: np.ndarray) -> Table:
    """Per H36M joint: observed/derived/missing in the source layout, and the share of frames missing it."""
    table = Table(title="joints", header_style="bold")
    table.add_column("joint")
    table.add_column("status")
    table.add_column("missing", justify="right")
    for j, name in enumerate(H36M_JOINTS):
        table.add_row(name, JointStatus(int(joint_status[j])).name.lower(), f"{100 * missing_rate[j]:.1f}%")
    return table


def check_plot_output(out: str | Path) -> Path:
    """Refuse, before any work, a --plot path that is not an image file name in a writable folder."""
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    if not out.is_dir() and not parent.is_dir():
        raise PoseCliError("plot folder does not exist", parent)
    check_output_file(out, create_parents=False)
    if out.suffix.lower() not in PLOT_FORMATS:
        raise PoseCliError(f"plot must be one of {', '.join(PLOT_FORMATS)}", out)
    return out


def plot_samples(cache_path: str | Path, out: str | Path, *, count: int = 16, seed: int = 0) -> Path:
    """Draw `count` random sequences' middle frames (H36M bones, image y down) into `out`, atomically."""
    out = check_plot_output(out)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open_cache(cache_path) as cache:
        fig = _draw_grid(plt, cache, count, seed)
    try:
        with atomic_output(out) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return out


def _draw_grid(plt, cache: PoseCache, count: int, seed: int):
    rng = np.random.default_rng(seed)
    picks = rng.choice(cache.num_sequences, size=min(count, cache.num_sequences), replace=False)
    cols = int(np.ceil(np.sqrt(len(picks))))
    rows = int(np.ceil(len(picks) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, seq in zip(axes.flat, picks):
        frame = int(cache.seq_start[seq] + cache.seq_length[seq] // 2)
        kp, conf = cache.keypoints2d[frame], cache.confidence[frame]
        for a, b in H36M_BONES:
            if conf[a] > 0 and conf[b] > 0:
                side = "tab:red" if b in (1, 2, 3, 14, 15, 16) else "tab:blue" if b in (4, 5, 6, 11, 12, 13) else "0.3"
                ax.plot(kp[[a, b], 0], kp[[a, b], 1], color=side, lw=2)
        seen = conf > 0
        ax.scatter(kp[seen, 0], kp[seen, 1], s=6, color="k", zorder=3)
        ax.set_aspect("equal")
        ax.invert_yaxis()
        ax.set_title(f"{cache.subject[seq][:18]} #{seq}", fontsize=7)
    fig.suptitle(f"{cache.dataset}: {len(picks)} of {cache.num_sequences} sequences (red = right)", fontsize=9)
    fig.tight_layout()
    return fig
