"""The evidence study (benchmarks/study.py): does 2D pretraining help 3D lifting, and by how much?

`grid` plans the runs (3D budgets, ablations, 2D data, architectures, robustness) as the same
preset + overrides the CLI takes, `runner` trains and evaluates them resumably through the library
functions the CLI calls, and `results` turns the finished runs into docs/results.md and plots.
"""

from posecli.study.grid import GROUPS, RunSpec, StudyOptions, estimate_seconds, plan
from posecli.study.results import collect, write_results
from posecli.study.runner import execute, is_finished

__all__ = ["GROUPS", "RunSpec", "StudyOptions", "collect", "estimate_seconds", "execute", "is_finished",
           "plan", "write_results"]
