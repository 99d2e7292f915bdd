"""The evidence study behind benchmarks/study.py: does 2D pretraining help 3D lifting, and by how much?

A research harness, not part of the posecli package: it drives posecli through its library functions.

`grid` plans the runs (3D budgets, ablations, 2D data, architectures, robustness) as the same
preset + overrides the CLI takes, `runner` trains and evaluates them resumably through the library
functions the CLI calls, `results` turns the finished runs into the prose of docs/results.md, `plots`
into its figures, and `write` writes both.
"""

from study.grid import GROUPS, RunSpec, StudyOptions, estimate_seconds, plan
from study.results import collect
from study.runner import execute, is_finished
from study.write import write_results

__all__ = ["GROUPS", "RunSpec", "StudyOptions", "collect", "estimate_seconds", "execute", "is_finished",
           "plan", "write_results"]
