"""posecli: 3D human pose estimation strengthened by 2D pretraining."""

__version__ = "0.1.0"
