"""Person crops, the cache's image group, the image dataset and the LSP reader."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from posecli.data import crops as cr
from posecli.data.cache import write_cache
from posecli.data.image_cache import (
    ImageStore,
    crops_for_records,
    read_crop,
    write_image_group,
)
from posecli.families.image.windows import ImageDataset
from posecli.data.readers.lsp import read_lsp
from posecli.data.records import PrepareOptions, ReaderResult, SequenceRecord
from posecli.errors import PoseCliError
from posecli.models.heatmaps import heatmap_to_crop
from posecli.skeleton import H36M17, H36M_FLIP_PERM, LSP14
from tests.conftest import shared_file

cv2 = pytest.importorskip("cv2")


def _pose(rng: np.random.Generator, center=(150.0, 120.0), size=80.0) -> np.ndarray:
    return (np.asarray(center) + rng.uniform(-size / 2, size / 2, (17, 2))).astype(np.float32)


def _ramp(h: int = 240, w: int = 320) -> np.ndarray:
    """Image whose red channel is x / 2 and green y / 2: bilinear sampling of it is exact."""
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([xs / 2, ys / 2, np.full_like(xs, 128)], axis=-1).round().astype(np.uint8)


def test_crop_affine_maps_keypoints_back_exactly():
    rng = np.random.default_rng(0)
    kp = _pose(rng)
    conf = np.ones(17, np.float32)
    image = _ramp()
    crop, to_image = cr.extract_crop(image, kp, conf, out_size=128, margin=1.3)
    to_crop = cr.invert_affine(to_image)
    back = cr.apply_affine(to_image, cr.apply_affine(to_crop, kp))
    assert np.abs(back - kp).max() < 1e-4
    # Pixel (u, v) of the crop shows image point to_image(u, v): the ramp encodes x/2 and y/2.
    vs, us = np.mgrid[20:108, 20:108]
    src = cr.apply_affine(to_image, np.stack([us, vs], -1))
    inside = (src[..., 0] > 1) & (src[..., 0] < 318) & (src[..., 1] > 1) & (src[..., 1] < 238)
    assert inside.mean() > 0.9
    assert np.abs(crop[20:108, 20:108, 0][inside] - src[..., 0][inside] / 2).max() <= 1.0
    assert np.abs(crop[20:108, 20:108, 1][inside] - src[..., 1][inside] / 2).max() <= 1.0


def test_flip_transform_is_an_exact_mirror_and_torch_warp_matches_opencv():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    flip = cr.augment_transform(64, flip=True)
    assert np.array_equal(cr.warp(image, flip, 64), image[:, ::-1])
    assert np.array_equal(cr.warp_torch(image, flip, 64), image[:, ::-1])
    aug = cr.augment_transform(64, scale=1.2, rotation_deg=17.0)
    diff = np.abs(cr.warp(image, aug, 64).astype(int) - cr.warp_torch(image, aug, 64).astype(int))
    assert diff[8:56, 8:56].mean() < 1.0
    centre = np.array([31.5, 31.5])
    assert np.allclose(cr.apply_affine(aug, centre), centre)
    assert np.allclose(cr.apply_affine(flip, [[0.0, 5.0], [63.0, 7.0]]), [[63.0, 5.0], [0.0, 7.0]])


def test_read_image_errors(tmp_path: Path):
    with pytest.raises(PoseCliError, match="not found"):
        cr.read_image(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(PoseCliError, match="not a readable image"):
        cr.read_image(bad)
    good = tmp_path / "ok.png"
    cv2.imwrite(str(good), np.zeros((5, 7, 3), np.uint8) + np.array([255, 0, 0], np.uint8))   # BGR blue
    rgb = cr.read_image(good)
    assert rgb.shape == (5, 7, 3) and tuple(rgb[0, 0]) == (0, 0, 255)


@pytest.mark.parametrize("encoding", ["raw", "jpeg"])
def test_image_group_round_trip(tmp_path: Path, encoding: str):
    rng = np.random.default_rng(2)
    crops = [cv2.GaussianBlur(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), (7, 7), 2) for _ in range(3)]
    affines = rng.normal(size=(3, 2, 3))
    with h5py.File(tmp_path / "c.h5", "w") as f:
        write_image_group(f, crops, affines, encoding=encoding)
    with h5py.File(tmp_path / "c.h5", "r") as f:
        crop, affine = read_crop(f, 1)
    assert np.array_equal(affine, affines[1])
    err = np.abs(crop.astype(int) - crops[1].astype(int)).mean()
    assert err == 0 if encoding == "raw" else err < 3


def _image_cache(tmp_path: Path, with3d: bool) -> tuple[Path, list[np.ndarray], np.ndarray]:
    """A 3-photo cache with crops: write_cache's records plus write_image_group."""
    rng = np.random.default_rng(3)
    records, kps = [], []
    for i in range(3):
        kp = _pose(rng)
        kps.append(kp)
        cv2.imwrite(str(tmp_path / f"im{i}.png"), _ramp())
        kp3d = None
        if with3d:
            kp3d = np.concatenate([rng.normal(size=(17, 2)) * 0.3, 4 + rng.normal(size=(17, 1)) * 0.2], -1)
        records.append(SequenceRecord(keypoints2d=kp[None], confidence=np.ones((1, 17), np.float32),
                                      keypoints3d=None if kp3d is None else kp3d[None].astype(np.float32),
                                      subject=f"im{i}", frame_names=[f"im{i}.png"]))
    result = ReaderResult(records=records, dataset="toy", source_layout="h36m17", joint_status=H36M17.status,
                          sources=[])
    path = write_cache(tmp_path / "toy.h5", result, split="train", command="test")
    crops, affines = crops_for_records(records, tmp_path, crop_size=96)
    with h5py.File(path, "a") as f:
        write_image_group(f, crops, affines)
    return path, kps, affines


def test_image_dataset_targets_map_back_to_the_photo(tmp_path: Path):
    path, kps, _ = _image_cache(tmp_path, with3d=True)
    ds = ImageDataset([{"path": str(path)}], {"flip": 0.5, "rotation_prob": 1.0}, split_seed=0,
                      length=40, input_size=64)
    assert len(ImageStore(path)) == 3
    flips = 0
    for index in range(40):
        sample = ds[index]
        c, seq, start, _ = ds.locate(index)
        frame = int(ds.caches[c].seq_start[seq]) + start
        assert sample["image"].shape == (3, 64, 64) and sample["heatmap_target"].shape == (17, 16, 16)
        uv = heatmap_to_crop(sample["target2d"].numpy().astype(np.float64), 4)
        back = cr.apply_affine(sample["affine"].numpy(), uv)
        conf = sample["conf"].numpy() > 0
        direct = np.abs(back - kps[frame]).max(axis=1)
        swapped = np.abs(back - kps[frame][H36M_FLIP_PERM]).max(axis=1)
        is_flip = bool(np.linalg.det(sample["affine"].numpy()[:, :2]) < 0)
        flips += is_flip
        assert ((swapped if is_flip else direct)[conf] < 1e-4).all()
        t3 = sample["target3d"].numpy()
        assert np.allclose(t3[0], 0) and bool(sample["has3d"])
    assert 5 < flips < 35
    plain = ImageDataset([{"path": str(path)}], None, split_seed=0, length=3, input_size=96, train=False)
    crop, _ = ImageStore(path).read(0)
    sample = plain.sample(0, 0, None)
    assert np.array_equal((sample["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), crop)


def test_image_loader_applies_data_fraction(tmp_path: Path):
    """data.fraction is an image-preset key too: the loader keeps that share of the 3D takes."""
    from posecli.families import get_family

    path, _, _ = _image_cache(tmp_path, with3d=True)
    model = get_family("image").build_model({"name": "image", "backbone": "resnet18", "width": 8,
                                             "deconv_channels": 16, "input_size": 64})

    def frames_seen(fraction: float) -> set[int]:
        cfg = {"sources": [{"path": str(path)}], "epoch_length": 60, "fraction": fraction, "fraction_seed": 0}
        dataset = get_family("image").build_loader(cfg, model, batch_size=6, seed=0).dataset
        return {int(dataset.caches[0].seq_start[dataset.locate(i)[1]]) for i in range(60)}

    assert len(frames_seen(1 / 3)) == 1 and frames_seen(1.0) == {0, 1, 2}
    assert frames_seen(2 / 3) > frames_seen(1 / 3)            # a smaller fraction keeps a subset


def test_dataset_refuses_cache_without_crops(tmp_path: Path):
    path, _, _ = _image_cache(tmp_path, with3d=False)
    with h5py.File(path, "a") as f:
        del f["image"]
    with pytest.raises(PoseCliError, match="no image crops"):
        ImageDataset([{"path": str(path)}], None, split_seed=0)


def test_lsp_reader_on_a_small_mat_file(tmp_path: Path):
    scipy_io = pytest.importorskip("scipy.io")
    rng = np.random.default_rng(4)
    joints = np.concatenate([rng.uniform(0, 150, (2, 14, 5)), rng.integers(0, 2, (1, 14, 5))])
    scipy_io.savemat(tmp_path / "joints.mat", {"joints": joints})
    result = read_lsp([tmp_path / "joints.mat"], PrepareOptions(split="all"))
    assert len(result.records) == 5 and result.records[2].frame_names == ["im0003.jpg"]
    rec = result.records[2]
    assert np.allclose(rec.keypoints2d[0, 3], joints[:2, 0, 2])          # r_ankle
    assert np.allclose(rec.keypoints2d[0, 0], joints[:2, 2:4, 2].mean(axis=1))   # pelvis = mid-hips
    assert (rec.confidence == 1).all()
    scipy_io.savemat(tmp_path / "ext.mat", {"joints": joints.transpose(1, 0, 2)})
    with pytest.raises(PoseCliError, match="LSP extended"):
        read_lsp([tmp_path / "ext.mat"], PrepareOptions())


def test_lsp_reader_real_split():
    path = shared_file("images/lsp/joints.mat")
    result = read_lsp([path], PrepareOptions(split="test"))
    assert len(result.records) == 1000 and result.records[0].subject == "im1001.jpg"
    assert result.source_layout == LSP14.name
    assert any("7.0%" in note or "occlusion flag" in note for note in result.notes)
