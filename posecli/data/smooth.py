"""One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) for 2D and 3D keypoint sequences.

It is a low-pass filter whose cutoff rises with speed: still joints lose their jitter, fast ones
keep their motion with little lag. `strength` is the one user knob: 0 turns smoothing off, 1 is
the default, larger values smooth more. Inputs are divided by `scale` first (e.g. the person's
size in pixels for 2D, 1 for metres) so that one strength means the same on any resolution.
"""

from __future__ import annotations

import math

import numpy as np

BASE_MIN_CUTOFF = 1.5   # Hz at strength 1
BASE_BETA = 1.5         # cutoff increase per (scale units / s) of speed at strength 1
D_CUTOFF = 1.0          # Hz, for the speed estimate


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


def one_euro(x: np.ndarray, fps: float, *, min_cutoff: float, beta: float,
             d_cutoff: float = D_CUTOFF) -> np.ndarray:
    """Filter [T, ...] along time; every trailing element is filtered independently."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return x.copy()
    dt = 1.0 / fps
    a_d = _alpha(d_cutoff, dt)
    out = np.empty_like(x)
    out[0] = prev = x[0]
    dx_prev = np.zeros_like(x[0])
    for t in range(1, len(x)):
        dx = a_d * (x[t] - prev) / dt + (1 - a_d) * dx_prev
        a = _alpha(min_cutoff + beta * np.abs(dx), dt)
        prev = a * x[t] + (1 - a) * prev
        out[t], dx_prev = prev, dx
    return out


def smooth_sequence(x: np.ndarray, fps: float, strength: float, *, scale: float = 1.0) -> np.ndarray:
    """One-Euro smoothing of a finite [T, ...] sequence at a user strength (0 = unchanged)."""
    if strength < 0:
        raise ValueError("smoothing strength must be >= 0")
    if strength == 0 or len(x) < 2:
        return np.asarray(x).copy()
    scale = max(float(scale), 1e-6)
    y = one_euro(np.asarray(x) / scale, fps, min_cutoff=BASE_MIN_CUTOFF / strength,
                 beta=BASE_BETA / strength)
    return (y * scale).astype(np.asarray(x).dtype)
