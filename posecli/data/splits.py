"""Fixed train / validation / test assignments of the mocap takes posecli trains its models on.

They live in one table so that every command agrees: a checkpoint is chosen on validation takes,
never on the test takes it is scored on, and the cross-dataset hold-out never reaches training.

- CMU Li et al. 2018 (npz / expmap txt): the published test split stays the test split; one take of
  each training action with five or more takes (the last one) is the validation split.
- CMU cgspeed BVH release (salsa couples, martial arts, Indian dance): files are named by their
  folder, e.g. ``salsa/01``. The two partners of a salsa couple (files NN and NN+15) stay on the
  same side. Everything not listed is train.
"""

from __future__ import annotations

from pathlib import Path

CMU_LI2018_VAL_TAKES = frozenset({
    "basketball_5", "basketball_signal_5", "jumping_5", "running_5", "soccer_5", "walking_5",
    "walking_42", "walking_52",
})

# cgspeed CMU BVH takes by "<folder>/<file stem>": a cross-dataset test set and a validation set.
CMU_DANCE_TEST = frozenset({"salsa/01", "salsa/16", "martial/10", "indian/15"})
CMU_DANCE_VAL = frozenset({"salsa/02", "salsa/17", "martial/09", "indian/14"})
CMU_DANCE_FOLDERS = frozenset({"salsa", "martial", "indian"})


def li2018_split(split: str, name: str) -> str:
    """The split of a Li 2018 take: its published split, with the validation takes moved out of train."""
    return "val" if split == "train" and name in CMU_LI2018_VAL_TAKES else split


def bvh_split(path: Path) -> str:
    """The split of a BVH file: train/val/test for the CMU dance release, "" (any split) otherwise."""
    if path.parent.name not in CMU_DANCE_FOLDERS:
        return ""
    key = f"{path.parent.name}/{path.stem}"
    return "test" if key in CMU_DANCE_TEST else "val" if key in CMU_DANCE_VAL else "train"
