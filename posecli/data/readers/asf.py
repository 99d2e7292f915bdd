"""Acclaim ASF/AMC (CMU mocap's native format, also HDM05's) via the BVH forward kinematics.

An ASF file describes the skeleton: per bone a unit `direction` and `length` in the world frame of
the rest pose, an `axis` (angles and their order) that orients the bone's local frame, and the
`dof` it rotates about; the `:root` section gives the root's channel `order`, `axis`, `position`
and `orientation`; `:units` gives the length scale (`length 0.45` = 0.45 file units per inch, CMU's
and HDM05's) and the angle unit (deg or rad). An AMC file lists, per frame, each bone's values in
its ASF dof order.

Conventions (those of CMU's own AMC viewer): rotations compose in the order they are listed, the
first listed applied first, so `axis 0 0 20 XYZ` is C = Rz(20) Ry(0) Rx(0) and `dof rx ry rz` is
M = Rz Ry Rx. A bone's world rotation is G = G_parent C M C^-1 and its end is its start plus
G (direction x length); a bone starts where its parent ends (the root's children at the root).
The root is G_root = O M_root with O its `orientation` in `axis` order.

Each bone becomes a BVH-style joint placed at its start, whose channel chain is C, M, C^-1 (C as
constant channels), so posecli.data.readers.bvh.forward_kinematics does the work; leaf bones get an
end site `<bone>_end` at their end (`head_end` is the head top).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecli.data.readers.bvh import BvhJoint, BvhMotion
from posecli.errors import PoseCliError

AMC_FPS = 120.0                    # CMU and HDM05 capture at 120 Hz; AMC files do not say
METRES_PER_INCH = 0.0254
MAX_BONES = 1000
_ROT_DOFS = {"rx": "Xrotation", "ry": "Yrotation", "rz": "Zrotation"}
_POS_DOFS = {"tx": "Xposition", "ty": "Yposition", "tz": "Zposition"}
_AXIS = {"X": "Xrotation", "Y": "Yrotation", "Z": "Zrotation"}
_HDM05_RATE = re.compile(r"^HDM_.+_(\d+)$")

# ASF bone -> the name CMU's MotionBuilder-friendly BVH release gives the joint at that bone's
# start, so that posecli.skeleton.bvh_layout maps ASF skeletons by name: the femur starts at the
# hip, the tibia at the knee, the foot bone at the ankle, the humerus at the shoulder, the radius at
# the elbow, the wrist bone at the wrist, upperback ~12 cm above the root (the spine joint) and the
# head bone at the top of the neck (its end site is the head top).
ASF_TO_BVH_NAMES = {
    "root": "Hips", "lhipjoint": "LHipJoint", "lfemur": "LeftUpLeg", "ltibia": "LeftLeg",
    "lfoot": "LeftFoot", "ltoes": "LeftToeBase", "rhipjoint": "RHipJoint", "rfemur": "RightUpLeg",
    "rtibia": "RightLeg", "rfoot": "RightFoot", "rtoes": "RightToeBase", "lowerback": "LowerBack",
    "upperback": "Spine", "thorax": "Spine1", "lowerneck": "Neck", "upperneck": "Neck1",
    "head": "Head", "lclavicle": "LeftShoulder", "lhumerus": "LeftArm", "lradius": "LeftForeArm",
    "lwrist": "LeftHand", "lhand": "LeftFingerBase", "lfingers": "LeftHandIndex1", "lthumb": "LThumb",
    "rclavicle": "RightShoulder", "rhumerus": "RightArm", "rradius": "RightForeArm",
    "rwrist": "RightHand", "rhand": "RightFingerBase", "rfingers": "RightHandIndex1", "rthumb": "RThumb",
}


@dataclass
class AsfBone:
    name: str
    direction: np.ndarray        # float64 [3], unit vector, rest-pose world frame
    length: float                # file units
    axis: np.ndarray             # float64 [3], degrees, about X, Y, Z
    axis_order: str              # e.g. "XYZ": the order the axis rotations are applied in
    dofs: tuple[str, ...]        # AMC value order, e.g. ("rx", "ry", "rz")
    parent: int = -1             # index into AsfSkeleton.bones, -1 = the root


@dataclass
class AsfSkeleton:
    bones: list[AsfBone]          # parents before children
    root_order: tuple[str, ...]   # AMC value order of the root, e.g. ("tx", "ty", "tz", "rx", "ry", "rz")
    root_axis_order: str
    root_position: np.ndarray     # file units
    root_orientation: np.ndarray  # degrees
    metres_per_unit: float | None  # None when the file gives no `length` unit
    degrees_per_unit: float       # 1 for `angle deg`, 180/pi for `angle rad`
    source: Path

    def index(self, name: str) -> int:
        return next(i for i, b in enumerate(self.bones) if b.name == name)


def _sections(text: str, path: Path) -> dict[str, list[list[str]]]:
    """':keyword' sections as lists of token lines (comments dropped)."""
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(":"):
            key, *rest = line.split()
            current = sections.setdefault(key[1:].lower(), [])
            if rest:
                current.append(rest)
        elif current is not None:
            current.append(line.split())
    if "bonedata" not in sections or "hierarchy" not in sections:
        raise PoseCliError("not an ASF file (needs :bonedata and :hierarchy sections)", path)
    return sections


def _floats(values: list[str], n: int, what: str, path: Path) -> np.ndarray:
    try:
        out = np.array([float(v) for v in values[:n]], dtype=np.float64)
    except ValueError:
        raise PoseCliError(f"malformed ASF {what} ({' '.join(values)})", path) from None
    if out.size != n or not np.isfinite(out).all():
        raise PoseCliError(f"malformed ASF {what} ({' '.join(values)})", path)
    return out


def _order(token: str, what: str, path: Path) -> str:
    order = token.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise PoseCliError(f"ASF {what} order must be a permutation of XYZ, got '{token}'", path)
    return order


def _units(lines: list[list[str]], path: Path) -> tuple[float | None, float]:
    """(metres per file length unit or None, degrees per file angle unit)."""
    values = {line[0].lower(): line[1] for line in lines if len(line) >= 2}
    metres = None
    if "length" in values:
        scale = _floats([values["length"]], 1, "units length", path)[0]
        if scale <= 0:
            raise PoseCliError(f"ASF units length must be positive, got {scale:g}", path)
        metres = METRES_PER_INCH / scale
    angle = values.get("angle", "deg").lower()
    if angle not in ("deg", "rad"):
        raise PoseCliError(f"ASF units angle must be deg or rad, got '{angle}'", path)
    return metres, 1.0 if angle == "deg" else 180.0 / np.pi


def _bone(lines: list[list[str]], degrees: float, path: Path) -> AsfBone:
    fields: dict[str, list[str]] = {}
    for line in lines:
        fields.setdefault(line[0].lower(), line[1:])
    if "name" not in fields or not fields["name"]:
        raise PoseCliError("ASF bone without a name", path)
    name = fields["name"][0]
    direction = _floats(fields.get("direction", []), 3, f"direction of bone '{name}'", path)
    norm = float(np.linalg.norm(direction))
    length = _floats(fields.get("length", []), 1, f"length of bone '{name}'", path)[0]
    axis_tokens = fields.get("axis", ["0", "0", "0", "XYZ"])
    axis = _floats(axis_tokens, 3, f"axis of bone '{name}'", path) * degrees
    order = _order(axis_tokens[3] if len(axis_tokens) > 3 else "XYZ", f"axis of bone '{name}'", path)
    dofs = tuple(d.lower() for d in fields.get("dof", []))
    bad = [d for d in dofs if d not in _ROT_DOFS]
    if bad:
        raise PoseCliError(f"ASF bone '{name}' has dof '{bad[0]}': only rx, ry, rz are supported on bones", path)
    return AsfBone(name, direction / norm if norm > 0 else direction, float(length), axis, order, dofs)


def read_asf(path: str | Path) -> AsfSkeleton:
    """Parse an ASF skeleton; raises PoseCliError naming the file when it is malformed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise PoseCliError(f"cannot read ASF file ({exc.strerror})", path) from None
    sections = _sections(text, path)
    metres, degrees = _units(sections.get("units", []), path)
    root = {line[0].lower(): line[1:] for line in sections.get("root", []) if line}
    root_order = tuple(t.lower() for t in root.get("order", ["TX", "TY", "TZ", "RX", "RY", "RZ"]))
    bad = [t for t in root_order if t not in _ROT_DOFS and t not in _POS_DOFS]
    if bad:
        raise PoseCliError(f"ASF root order has unknown channel '{bad[0]}'", path)
    root_axis = _order(root.get("axis", ["XYZ"])[0], "root axis", path)
    position = _floats(root.get("position", ["0", "0", "0"]), 3, "root position", path)
    orientation = _floats(root.get("orientation", ["0", "0", "0"]), 3, "root orientation", path) * degrees

    bones: list[AsfBone] = []
    block: list[list[str]] | None = None
    for line in sections["bonedata"]:
        if line[0] == "begin":
            block = []
        elif line[0] == "end":
            if block is None:
                raise PoseCliError("ASF :bonedata has 'end' without 'begin'", path)
            bones.append(_bone(block, degrees, path))
            block = None
            if len(bones) > MAX_BONES:
                raise PoseCliError(f"ASF file has more than {MAX_BONES} bones", path)
        elif block is not None:
            block.append(line)
    names = [b.name for b in bones]
    if len(set(names)) != len(names) or "root" in names:
        raise PoseCliError("ASF bone names must be unique and not 'root'", path)
    parent_of: dict[str, str] = {}
    for line in sections["hierarchy"]:
        if line[0] in ("begin", "end"):
            continue
        for child in line[1:]:
            if child not in names:
                raise PoseCliError(f"ASF hierarchy names unknown bone '{child}'", path)
            parent_of[child] = line[0]
    ordered = _tree_order(names, parent_of, path)
    by_name = {b.name: b for b in bones}
    out = [by_name[n] for n in ordered]
    index = {n: i for i, n in enumerate(ordered)}
    for bone in out:
        bone.parent = -1 if parent_of[bone.name] == "root" else index[parent_of[bone.name]]
    return AsfSkeleton(out, root_order, root_axis, position, orientation, metres, degrees, path)


def _tree_order(names: list[str], parent_of: dict[str, str], path: Path) -> list[str]:
    """Bones in depth-first order from the root (every bone must hang below it)."""
    children: dict[str, list[str]] = {}
    for child in names:
        if child not in parent_of:
            raise PoseCliError(f"ASF bone '{child}' is not in the hierarchy", path)
        children.setdefault(parent_of[child], []).append(child)
    ordered: list[str] = []
    stack = list(reversed(children.get("root", [])))
    while stack:
        name = stack.pop()
        ordered.append(name)
        stack.extend(reversed(children.get(name, [])))
    if len(ordered) != len(names):
        raise PoseCliError("ASF hierarchy is not a tree below the root", path)
    return ordered


def read_amc(path: str | Path, skeleton: AsfSkeleton) -> np.ndarray:
    """AMC frames as [T, C] values: the root's channels, then each bone's dofs in bone order, angles
    in degrees (converted from the ASF's angle unit; an AMC header that says otherwise is an error)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise PoseCliError(f"cannot read AMC file ({exc.strerror})", path) from None
    columns = {"root": (0, skeleton.root_order)}
    start = len(skeleton.root_order)
    for bone in skeleton.bones:
        if bone.dofs:
            columns[bone.name] = (start, bone.dofs)
            start += len(bone.dofs)
    header = {ln.strip().upper() for ln in lines if ln.startswith(":")}
    says = "deg" if ":DEGREES" in header else "rad" if ":RADIANS" in header else None
    if says is not None and says != ("deg" if skeleton.degrees_per_unit == 1.0 else "rad"):
        raise PoseCliError(f"AMC header says {says} but its ASF skeleton's units say otherwise", path)
    body = [ln.split() for ln in lines if ln.strip() and not ln.lstrip().startswith(("#", ":"))]
    n_frames = sum(1 for tokens in body if len(tokens) == 1 and tokens[0].isdigit())
    if n_frames == 0:
        raise PoseCliError("AMC file has no frames", path)
    values = np.zeros((n_frames, start), dtype=np.float64)
    filled = np.zeros((n_frames, start), dtype=bool)
    frame = -1
    for tokens in body:
        if len(tokens) == 1 and tokens[0].isdigit():
            frame += 1
            continue
        if frame < 0 or tokens[0] not in columns:
            what = "values before the first frame number" if frame < 0 else f"unknown bone '{tokens[0]}'"
            raise PoseCliError(f"malformed AMC file ({what})", path)
        col, dofs = columns[tokens[0]]
        if len(tokens) - 1 != len(dofs):
            raise PoseCliError(f"AMC frame {frame + 1}: '{tokens[0]}' has {len(tokens) - 1} values, "
                               f"its ASF dof lists {len(dofs)}", path)
        try:
            values[frame, col:col + len(dofs)] = [float(v) for v in tokens[1:]]
        except ValueError:
            raise PoseCliError(f"AMC frame {frame + 1}: non-numeric value for '{tokens[0]}'", path) from None
        filled[frame, col:col + len(dofs)] = True
    if not filled.all():
        bad_frame = int(np.argmin(filled.all(axis=1)))
        raise PoseCliError(f"AMC frame {bad_frame + 1} lacks some bones of the ASF skeleton", path)
    if not np.isfinite(values).all():
        raise PoseCliError("AMC file holds non-finite values", path)
    rot = np.array([d in _ROT_DOFS for d in skeleton.root_order]
                   + [True] * (start - len(skeleton.root_order)))
    values[:, rot] *= skeleton.degrees_per_unit
    return values


def _axis_chain(axis: np.ndarray, order: str, inverse: bool) -> list[tuple[str, float]]:
    """C = R_o3 R_o2 R_o1 (o1 applied first) as BVH channels listed outermost first; C^-1 reversed."""
    chain = [(_AXIS[a], float(axis["XYZ".index(a)])) for a in reversed(order)]
    return [(name, -angle) for name, angle in reversed(chain)] if inverse else chain


def asf_motion(skeleton: AsfSkeleton, values: np.ndarray, fps: float = AMC_FPS) -> BvhMotion:
    """The ASF skeleton with AMC values [T, C] (degrees) as a BvhMotion in file units: one joint per
    bone at its start, end sites at the ends of leaf bones."""
    t = values.shape[0]
    columns: list[np.ndarray] = []
    joints: list[BvhJoint] = []

    def add(name: str, parent: int, offset: np.ndarray, chain: list[tuple[str, np.ndarray | float]]) -> None:
        start = len(columns)
        for _, column in chain:
            columns.append(np.broadcast_to(np.asarray(column, np.float64), (t,)))
        joints.append(BvhJoint(name, parent, offset, tuple(c for c, _ in chain), start))

    # Root: orientation O (axis order), then the root channels; rotations applied in listed order.
    order = skeleton.root_order
    root_cols = {d: values[:, i] for i, d in enumerate(order)}
    root_chain: list[tuple[str, np.ndarray | float]] = [(c, a) for c, a in _axis_chain(
        skeleton.root_orientation, skeleton.root_axis_order, inverse=False)]
    root_chain += [(_POS_DOFS[d], root_cols[d]) for d in order if d in _POS_DOFS]
    root_chain += [(_ROT_DOFS[d], root_cols[d]) for d in reversed(order) if d in _ROT_DOFS]
    add("root", -1, skeleton.root_position.copy(), root_chain)

    col = len(order)
    for bone in skeleton.bones:
        dof_cols = {d: values[:, col + k] for k, d in enumerate(bone.dofs)}
        col += len(bone.dofs)
        chain: list[tuple[str, np.ndarray | float]] = list(_axis_chain(bone.axis, bone.axis_order, False))
        chain += [(_ROT_DOFS[d], dof_cols[d]) for d in reversed(bone.dofs)]
        chain += _axis_chain(bone.axis, bone.axis_order, inverse=True)
        if bone.parent < 0:
            parent, offset = 0, np.zeros(3)
        else:
            up = skeleton.bones[bone.parent]
            parent, offset = 1 + bone.parent, up.direction * up.length
        add(bone.name, parent, offset, chain)
    has_child = {b.parent for b in skeleton.bones}
    for i, bone in enumerate(skeleton.bones):
        if i not in has_child:
            joints.append(BvhJoint(f"{bone.name}_end", 1 + i, bone.direction * bone.length, (), 0))
    frames = np.stack(columns, axis=1) if columns else np.zeros((t, 0))
    return BvhMotion(joints, frames, 1.0 / fps)


def amc_fps(path: Path) -> float:
    """HDM05 names its files `HDM_<actor>_<motion>_<rate>.amc`; otherwise CMU's 120 Hz."""
    match = _HDM05_RATE.match(path.stem)
    return float(match.group(1)) if match and 0 < int(match.group(1)) <= 1000 else AMC_FPS


def find_asf(amc: Path, given: list[Path]) -> Path:
    """The ASF skeleton of an AMC file: among the given .asf files and those beside it, the one
    whose name (without .asf) starts the AMC's name (HDM_mm -> HDM_mm_..., 01 -> 01_02), or the
    only one beside it."""
    beside = sorted(amc.parent.glob("*.asf")) + sorted(amc.parent.glob("*.ASF"))
    candidates = list(dict.fromkeys([*given, *beside]))
    stem = amc.stem.lower()
    named = [p for p in candidates if stem.startswith(p.stem.lower() + "_") or stem == p.stem.lower()]
    if named:
        return max(named, key=lambda p: len(p.stem))
    if len(beside) == 1:
        return beside[0]
    raise PoseCliError("AMC file needs its ASF skeleton: pass the .asf as an input or keep it beside the "
                       "file, named like the AMC's prefix (HDM_mm.asf for HDM_mm_..., 01.asf for 01_02.amc)", amc)


def bvh_names(names: list[str]) -> list[str]:
    """ASF bone names (and `<bone>_end` sites) renamed as CMU's BVH release names the same joints."""
    out = []
    for name in names:
        base, end = (name.removesuffix("_end"), "_end") if name.endswith("_end") else (name, "")
        out.append(ASF_TO_BVH_NAMES.get(base, base) + end)
    return out
