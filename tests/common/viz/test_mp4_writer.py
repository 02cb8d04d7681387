"""``Mp4Writer`` / ``write_mp4``: H.264 (libx264, yuv420p) files that decode back with the right count and size."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from vidseg_common.errors import DataError
from vidseg_common.viz import Mp4Writer, write_mp4


def frames(count: int, height: int, width: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def probe(path: Path) -> tuple[str, int, tuple[int, int], str]:
    """(codec name, decoded frame count, (H, W), pixel format) of an MP4."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [f for f in container.decode(stream)]
        return stream.codec_context.name, len(decoded), (decoded[0].height, decoded[0].width), decoded[0].format.name


def test_incremental_writer_is_h264_with_every_frame(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    with Mp4Writer(path, fps=10) as writer:
        for frame in frames(7, 64, 96):
            writer.write(frame)
        assert not path.exists()  # written under a temporary name until close
    assert probe(path) == ("h264", 7, (64, 96), "yuv420p")
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_odd_sizes_are_padded_by_one_pixel(tmp_path: Path) -> None:
    write_mp4(tmp_path / "odd.mp4", frames(3, 63, 95), fps=2.5)
    assert probe(tmp_path / "odd.mp4") == ("h264", 3, (64, 96), "yuv420p")


def test_frame_content_survives_near_losslessly(tmp_path: Path) -> None:
    smooth = [np.broadcast_to(np.linspace(0, 255, 96, dtype=np.uint8)[None, :, None], (64, 96, 3)).copy()] * 2
    write_mp4(tmp_path / "s.mp4", smooth, fps=5)
    with av.open(str(tmp_path / "s.mp4")) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(first.astype(int) - smooth[0]).mean() < 3


def test_errors_leave_no_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.mp4"
    with pytest.raises(DataError, match="bad.mp4"), Mp4Writer(path) as writer:
        writer.write(frames(1, 32, 32)[0])
        writer.write(frames(1, 16, 32)[0])  # another size
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match="no frames"), Mp4Writer(path):
        pass
    with pytest.raises(DataError, match="uint8"):
        Mp4Writer(path).write(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(DataError, match="fps"):
        Mp4Writer(path, fps=0)


def test_mp4v_path_still_writes(tmp_path: Path) -> None:
    write_mp4(tmp_path / "v.mp4", frames(4, 32, 48), fps=5, codec="mp4v")
    codec, count, size, _ = probe(tmp_path / "v.mp4")
    assert (codec, count, size) == ("mpeg4", 4, (32, 48))
