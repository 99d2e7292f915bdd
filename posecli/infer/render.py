"""`--render`: an MP4 with the 2D skeleton drawn on the video beside a 3D view of the lifted pose.

Drawing uses OpenCV (antialiased lines on uint8 RGB arrays) and encoding PyAV H.264 (video.py).
The 3D panel is an orthographic view of the root-relative pose from a fixed oblique direction
(the camera frame turned about the vertical axis), so depth errors the video hides become visible.
Each track has its own colours, the same in both panels, with its id written above its head: the
first keeps left limbs blue, right limbs red and the trunk green; the others get other hues, their
left limbs lighter than their right ones.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from posecli.errors import PoseCliError
from posecli.infer.outputs import PoseSequence
from posecli.infer.video import H264Writer, iter_frames
from posecli.skeleton import H36M_BONES, H36M_JOINTS

_LEFT = {j for j, name in enumerate(H36M_JOINTS) if name.startswith("l_")}
_RIGHT = {j for j, name in enumerate(H36M_JOINTS) if name.startswith("r_")}
COLORS = {"left": (60, 120, 255), "right": (255, 70, 60), "centre": (40, 200, 80)}
# Per track: (left, right, centre) limb colours; tracks beyond the list reuse it cyclically.
PERSON_COLORS = [
    (COLORS["left"], COLORS["right"], COLORS["centre"]),
    ((255, 230, 120), (230, 150, 0), (255, 190, 40)),     # yellow / orange
    ((150, 255, 255), (0, 170, 200), (60, 220, 230)),     # cyan
    ((255, 160, 255), (190, 40, 190), (230, 90, 230)),    # magenta
    ((200, 255, 160), (90, 170, 30), (150, 220, 80)),     # lime
    ((255, 255, 255), (150, 150, 150), (210, 210, 210)),  # grey
]


def bone_colors(person: int = 0) -> list[tuple[int, int, int]]:
    """The colour of each H36M bone for the track in column `person`."""
    left, right, centre = PERSON_COLORS[person % len(PERSON_COLORS)]
    return [left if b in _LEFT else right if b in _RIGHT else centre for _, b in H36M_BONES]


BONE_COLORS = bone_colors(0)
PANEL_METRES = 2.4   # the 3D panel shows a square of this side around the pelvis


def _cv2():
    try:
        import cv2
    except ImportError:
        raise PoseCliError('OpenCV is not installed: pip install "posecli[video]"') from None
    return cv2


def draw_skeleton_2d(image: np.ndarray, keypoints: np.ndarray, confidence: np.ndarray,
                     thickness: int = 3, person: int = 0, label: str | None = None) -> None:
    """Draw one H36M-17 pose [17, 2] (image pixels) in place in the colours of track column
    `person`, with `label` above the head; joints with confidence 0 are skipped."""
    cv2 = _cv2()
    pts = np.round(np.nan_to_num(keypoints)).astype(np.int32)
    colors = bone_colors(person)
    for (a, b), color in zip(H36M_BONES, colors):
        if confidence[a] > 0 and confidence[b] > 0:
            cv2.line(image, tuple(pts[a]), tuple(pts[b]), color, thickness, cv2.LINE_AA)
    for j in np.flatnonzero(confidence > 0):
        cv2.circle(image, tuple(pts[j]), thickness + 1, (255, 255, 255), -1, cv2.LINE_AA)
    seen = confidence > 0
    if label is not None and seen.any():
        x, y = int(pts[seen, 0].mean()), int(pts[seen, 1].min()) - 4 * thickness
        scale = max(0.5, thickness / 3)
        cv2.putText(image, label, (x, max(y, 12)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                    thickness + 2, cv2.LINE_AA)
        cv2.putText(image, label, (x, max(y, 12)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    PERSON_COLORS[person % len(PERSON_COLORS)][2], thickness, cv2.LINE_AA)


def view_rotation(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Rotation turning camera-frame points (y down) to the viewing direction: yaw about y, then pitch."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    yaw = np.array([[np.cos(az), 0, np.sin(az)], [0, 1, 0], [-np.sin(az), 0, np.cos(az)]])
    pitch = np.array([[1, 0, 0], [0, np.cos(el), -np.sin(el)], [0, np.sin(el), np.cos(el)]])
    return pitch @ yaw


def project_panel(points: np.ndarray, size: int, rotation: np.ndarray, offset_x: float = 0.0,
                  metres: float = PANEL_METRES) -> np.ndarray:
    """Orthographic projection of root-relative metres [..., 3] into a size x size panel."""
    p = points @ rotation.T
    s = size / metres
    return np.stack([size / 2 + (p[..., 0] + offset_x) * s, size / 2 + p[..., 1] * s], axis=-1)


def draw_panel_3d(size: int, poses3d: np.ndarray, rotation: np.ndarray,
                  people: list[int] | None = None) -> np.ndarray:
    """A size x size RGB panel with a floor grid and each valid pose [P, 17, 3] side by side,
    pose i in the colours of track column people[i] (default: i)."""
    cv2 = _cv2()
    panel = np.full((size, size, 3), 24, np.uint8)
    floor = 0.9                                   # metres below the pelvis, about the feet
    for v in np.linspace(-1.0, 1.0, 5):
        for line in (np.array([[v, floor, -1.0], [v, floor, 1.0]]), np.array([[-1.0, floor, v], [1.0, floor, v]])):
            a, b = np.round(project_panel(line, size, rotation)).astype(np.int32)
            cv2.line(panel, tuple(a), tuple(b), (70, 70, 70), 1, cv2.LINE_AA)
    columns = list(range(len(poses3d))) if people is None else people
    shown = [(pose, col) for pose, col in zip(poses3d, columns) if np.isfinite(pose).all()]
    for i, (pose, col) in enumerate(shown):
        offset = (i - (len(shown) - 1) / 2) * 0.9
        draw_skeleton_2d(panel, project_panel(pose, size, rotation, offset), np.ones(len(pose)),
                         thickness=max(2, size // 180), person=col)
    return panel


# World frame (y up, z towards the camera) -> the panels' camera-like axes (y down, z forward).
_WORLD_TO_VIEW = np.diag([1.0, -1.0, -1.0])


def world_view(keypoints_world: np.ndarray, valid: np.ndarray, follow: bool) -> tuple[np.ndarray, float]:
    """Per-frame centres [F, 3] (world) and the panel side (metres) for the world-frame 3D view:
    following the people (their mean pelvis, at floor level) or fixed on the whole trajectory."""
    pelvis = np.where(valid[..., None], keypoints_world[:, :, 0], np.nan)           # [F, P, 3]
    seen = np.isfinite(pelvis).all(-1)
    if not seen.any():
        return np.zeros((len(pelvis), 3)), PANEL_METRES
    count = seen.sum(axis=1)[:, None]                                              # frames nobody is in: NaN
    per_frame = np.where(count > 0, np.where(seen[..., None], pelvis, 0.0).sum(axis=1) / np.maximum(count, 1),
                         np.nan)
    if follow:
        centres = per_frame.copy()
        last = np.nanmean(pelvis[seen], axis=0)
        for f in range(len(centres)):                                              # hold where nobody is seen
            last = centres[f] if np.isfinite(centres[f]).all() else last
            centres[f] = last
        centres[:, 1] = 0.9
        return centres, PANEL_METRES
    everyone = pelvis[seen]
    low, high = everyone.min(0), everyone.max(0)
    centre = (low + high) / 2.0
    centre[1] = 0.9
    side = max(PANEL_METRES, float(np.max((high - low)[[0, 2]])) + 1.6)
    return np.broadcast_to(centre, (len(pelvis), 3)).copy(), side


def draw_world_panel(size: int, poses_world: np.ndarray, rotation: np.ndarray, centre: np.ndarray,
                     metres: float, people: list[int] | None = None) -> np.ndarray:
    """A size x size panel of world-frame poses [P, 17, 3] where they stand, with the floor (y = 0),
    pose i in the colours of track column people[i] (default: i)."""
    cv2 = _cv2()
    panel = np.full((size, size, 3), 24, np.uint8)
    step = 0.5 if metres <= 6 else 1.0
    lo = np.floor((centre[[0, 2]] - metres) / step) * step
    for k in range(int(2 * metres / step) + 2):
        for line in (np.array([[lo[0] + k * step, 0.0, lo[1]], [lo[0] + k * step, 0.0, lo[1] + 2 * metres]]),
                     np.array([[lo[0], 0.0, lo[1] + k * step], [lo[0] + 2 * metres, 0.0, lo[1] + k * step]])):
            a, b = np.round(project_panel((line - centre) @ _WORLD_TO_VIEW, size, rotation, metres=metres)
                            ).astype(np.int32)
            cv2.line(panel, tuple(a), tuple(b), (70, 70, 70), 1, cv2.LINE_AA)
    columns = list(range(len(poses_world))) if people is None else people
    for pose, col in zip(poses_world, columns):
        if np.isfinite(pose).all():
            draw_skeleton_2d(panel, project_panel((pose - centre) @ _WORLD_TO_VIEW, size, rotation, metres=metres),
                             np.ones(len(pose)), thickness=max(2, size // 180), person=col)
    return panel


def render_video(video, poses: PoseSequence, out_path, *, height: int = 720, azimuth: float = -40.0,
                 elevation: float = 12.0, on_frame: Callable[[], None] | None = None,
                 world=None, follow: bool = True) -> int:
    """Write the side-by-side MP4 atomically; returns the number of frames rendered. With `world`
    (posecli.infer.world.WorldPoses) the 3D view shows the people where they walk, on the floor,
    following them or (follow=False) fixed on the whole trajectory."""
    cv2 = _cv2()
    rotation = view_rotation(azimuth, elevation)
    if world is not None:
        centres, side = world_view(world.keypoints3d_world, poses.valid, follow)
    with H264Writer(out_path, poses.fps) as writer:
        for f, frame in enumerate(iter_frames(video, max_frames=poses.num_frames)):
            scale = min(1.0, height / frame.shape[0])
            if scale < 1.0:
                frame = cv2.resize(frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)),
                                   interpolation=cv2.INTER_AREA)
            frame = np.ascontiguousarray(frame)
            people = np.flatnonzero(poses.valid[f])
            for p in people:
                draw_skeleton_2d(frame, poses.keypoints2d[f, p] * scale, poses.confidence[f, p],
                                 thickness=max(2, frame.shape[0] // 240), person=int(p),
                                 label=f"id {int(poses.track_ids[p])}" if poses.num_tracks > 1 else None)
            if world is None:
                panel = draw_panel_3d(frame.shape[0], poses.keypoints3d[f][people], rotation, people.tolist())
            else:
                panel = draw_world_panel(frame.shape[0], world.keypoints3d_world[f][people], rotation,
                                         centres[f], side, people.tolist())
            writer.write(np.concatenate([frame, panel], axis=1))
            if on_frame is not None:
                on_frame()
        return writer.frames
