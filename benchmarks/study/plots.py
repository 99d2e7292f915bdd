"""The study's two PNG plots: test error against 3D budget, validation error against compute."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posecli.atomic import atomic_output
from posecli.eval.plots import pyplot
from study.grid import BUDGETS
from study.results import mean_curve

ARMS = (("main", "2D-pretrained", "-"), ("scratch", "scratch", "--"))


def _save(fig, path: Path) -> Path:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110)
    return path


def plot_budgets(study, path: Path) -> Path:
    """P1 (seed mean, error bar = sd) against the share of 3D takes, clean and noisy 2D input."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for noise, marker in ((0.0, "o"), (study.opts.noise_level, "s")):
        for init, label, style in ARMS:
            pts = [(f * 100, list(study.values("stformer", init, f, "p1", noise).values())) for f in BUDGETS]
            pts = [(x, v) for x, v in pts if v]
            if not pts:
                continue
            x = [p[0] for p in pts]
            y = [float(np.mean(p[1])) for p in pts]
            err = [float(np.std(p[1], ddof=1)) if len(p[1]) > 1 else 0.0 for p in pts]
            name = label if noise == 0 else f"{label}, 2D noise {noise:g}"
            ax.errorbar(x, y, yerr=err, linestyle=style, marker=marker, capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_xticks([f * 100 for f in BUDGETS], [f"{f * 100:g} %" for f in BUDGETS])
    ax.minorticks_off()
    ax.set_xlabel("3D training data (% of CMU train takes)")
    ax.set_ylabel("MPJPE, CMU test (mm)")
    ax.set_title("Test error against 3D budget")
    ax.grid(alpha=0.3, which="both")
    if ax.lines:
        ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def plot_compute(study, path: Path) -> Path:
    """Validation MPJPE (seed mean) against fine-tuning steps and training wall time, per budget."""

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for colour, fraction in zip(colours, BUDGETS):
        for init, label, style in ARMS:
            curve = mean_curve(study, "stformer", init, fraction)
            if not len(curve):
                continue
            for ax, column in zip(axes, (0, 2)):
                ax.plot(curve[:, column], curve[:, 1], style, color=colour, marker=".",
                        label=f"{fraction * 100:g} %, {label}")
    for ax, xlabel in zip(axes, ("fine-tuning steps", "fine-tuning wall time (s)")):
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation MPJPE (mm)")
    axes[0].set_title("Error against steps")
    axes[1].set_title("Error against wall time")
    if axes[0].lines:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path
