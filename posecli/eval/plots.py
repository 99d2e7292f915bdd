"""PNG plots of an evaluation report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_table(rows: list[dict], key: str, path: Path, title: str, unit: str) -> Path:
    """Horizontal bar chart of one protocol's value per row (action, joint, ...)."""
    plt = pyplot()
    names = [r["name"] or "(none)" for r in rows]
    values = [r.get(key, np.nan) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.2))
    ax.barh(names, values, color="#4c72b0")
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_over_time(curves: dict[str, np.ndarray], path: Path, title: str) -> Path:
    """Per-frame MPJPE of the worst sequences, one line each."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for name, curve in curves.items():
        ax.plot(np.arange(len(curve)), curve, label=name, linewidth=1)
    ax.set_xlabel("frame")
    ax.set_ylabel("MPJPE (mm)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
