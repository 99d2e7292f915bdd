"""docs/results.md and its plots from a collected study (results.py writes the prose, plots.py the PNGs)."""

from __future__ import annotations

from pathlib import Path

from posecli.atomic import atomic_output
from study.plots import plot_budgets, plot_compute
from study.results import Study, markdown


def write_results(study: Study, docs: Path) -> list[Path]:
    """docs/results.md and its two plots, each written atomically."""
    docs.mkdir(parents=True, exist_ok=True)
    paths = [plot_budgets(study, docs / "results_budget.png"), plot_compute(study, docs / "results_compute.png")]
    with atomic_output(docs / "results.md") as tmp:
        tmp.write_text(markdown(study), encoding="utf-8")
    return [docs / "results.md", *paths]
