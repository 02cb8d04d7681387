"""``read_first_mask``: palette, greyscale, RGB, 0/255 binary and .npy masks give the same ids; clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidseg_common.data.first_mask import read_first_mask
from vidseg_common.data.formats.png import write_index_png
from vidseg_common.errors import DataError

H, W = 64, 96


def two_objects() -> np.ndarray:
    ids = np.zeros((H, W), np.uint8)
    ids[20:36, 4:20] = 1   # first in raster order
    ids[40:56, 70:86] = 2
    return ids


def test_every_format_gives_the_same_ids(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ids = two_objects()
    write_index_png(tmp_path / "palette.png", ids)
    Image.fromarray(ids, mode="L").save(tmp_path / "grey.png")
    np.save(tmp_path / "ids.npy", ids.astype(np.int64))
    colours = np.array([[0, 0, 0], [250, 200, 10], [0, 128, 255]], np.uint8)
    Image.fromarray(colours[ids]).save(tmp_path / "rgb.png")
    rgba = np.concatenate([colours[ids], np.full((H, W, 1), 255, np.uint8)], axis=2)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    gapped = np.where(ids == 2, 7, ids * 3).astype(np.uint8)  # ids {3, 7} → {1, 2}
    write_index_png(tmp_path / "gapped.png", gapped)
    with caplog.at_level(logging.INFO, logger="vidseg_common.data.first_mask"):
        for name in ("palette.png", "grey.png", "ids.npy", "rgb.png", "rgba.png", "gapped.png"):
            got, count = read_first_mask(tmp_path / name, (H, W))
            assert count == 2, name
            np.testing.assert_array_equal(got, ids, err_msg=name)
    assert "#fac80a → 1, #0080ff → 2" in caplog.text and "[3, 7] renumbered" in caplog.text


def test_binary_masks_are_one_object_and_void_is_kept(tmp_path: Path) -> None:
    ids = two_objects()
    Image.fromarray(((ids > 0) * 255).astype(np.uint8), mode="L").save(tmp_path / "binary.png")
    got, count = read_first_mask(tmp_path / "binary.png", (H, W))
    assert count == 1 and set(np.unique(got)) == {0, 1}
    Image.fromarray(ids > 0).save(tmp_path / "bits.png")  # mode "1"
    assert read_first_mask(tmp_path / "bits.png", (H, W))[1] == 1
    void = ids.copy()
    void[0, :] = 255
    write_index_png(tmp_path / "void.png", void)
    got, count = read_first_mask(tmp_path / "void.png", (H, W))
    assert count == 2 and (got[0] == 255).all()


def test_mask_is_shrunk_with_the_frames(tmp_path: Path) -> None:
    write_index_png(tmp_path / "m.png", two_objects())
    got, count = read_first_mask(tmp_path / "m.png", (H, W), (32, 48))
    assert got.shape == (32, 48) and count == 2 and got[14, 5] == 1


def test_errors(tmp_path: Path) -> None:
    write_index_png(tmp_path / "small.png", two_objects()[:32])
    with pytest.raises(DataError, match=r"small.png: mask is 32×96 .* video frames are 64×96"):
        read_first_mask(tmp_path / "small.png", (H, W))
    write_index_png(tmp_path / "empty.png", np.zeros((H, W), np.uint8))
    with pytest.raises(DataError, match="empty.png: the mask holds no object"):
        read_first_mask(tmp_path / "empty.png", (H, W))
    np.save(tmp_path / "big.npy", np.arange(H * W).reshape(H, W))
    with pytest.raises(DataError, match=r"big.npy: ids must lie in \[0, 255\]"):
        read_first_mask(tmp_path / "big.npy", (H, W))
    noisy = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)  # a photo / JPEG, not a mask
    Image.fromarray(noisy).save(tmp_path / "photo.png")
    with pytest.raises(DataError, match="photo.png: .* distinct colours"):
        read_first_mask(tmp_path / "photo.png", (H, W))
    with pytest.raises(DataError, match="missing.png: first-frame mask not found"):
        read_first_mask(tmp_path / "missing.png", (H, W))
    (tmp_path / "junk.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="junk.png: cannot decode"):
        read_first_mask(tmp_path / "junk.png", (H, W))
