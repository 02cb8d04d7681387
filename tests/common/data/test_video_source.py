"""``VideoSource``: video files (PyAV) and frame folders, selection (start / end / every), resize and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidseg_common.data.video_source import VideoSource
from vidseg_common.errors import DataError
from vidseg_common.viz import write_mp4

H, W, T = 64, 96, 10


def moving_square(t: int, height: int = H, width: int = W) -> np.ndarray:
    """A grey frame with a white 16×16 square that moves right by 6 px per frame."""
    frame = np.full((height, width, 3), 60, np.uint8)
    frame[20:36, 4 + 6 * t : 20 + 6 * t] = 255
    return frame


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_mp4(path, [moving_square(t) for t in range(T)], fps=10)
    return path


def test_video_file_yields_every_frame_in_order(clip: Path) -> None:
    source = VideoSource(clip)
    assert (source.name, len(source), source.fps, source.source_size) == ("clip", T, 10.0, (H, W))
    items = list(source)
    assert [i for i, _ in items] == list(range(T))
    for t, frame in items:
        assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
        assert np.abs(frame.astype(int) - moving_square(t)).mean() < 4  # H.264 at crf 18


def test_selection_and_resize(clip: Path) -> None:
    source = VideoSource(clip, every=3, start=1, end=9, max_side=48)
    assert len(source) == 3 and source.fps == pytest.approx(10 / 3)
    items = list(source)
    assert [i for i, _ in items] == [1, 4, 7]
    assert items[0][1].shape == (32, 48, 3)


def test_folder_matches_decoded_video(clip: Path, tmp_path: Path) -> None:
    for t, frame in VideoSource(clip):
        Image.fromarray(frame).save(tmp_path / f"{t:05d}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    folder = VideoSource(tmp_path, start=2)
    assert (folder.name, len(folder), folder.fps) == (tmp_path.name, T - 2, None)
    for (i, a), (j, b) in zip(VideoSource(clip, start=2), folder, strict=True):
        assert i == j
        np.testing.assert_array_equal(a, b)


def test_errors_name_the_file(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such"):
        VideoSource(tmp_path / "missing.mp4")
    (tmp_path / "clip.avi").write_bytes(b"x")
    with pytest.raises(DataError, match="not a video file"):
        VideoSource(tmp_path / "clip.avi")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    with pytest.raises(DataError, match="junk.mp4: cannot open"):
        VideoSource(tmp_path / "junk.mp4")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no .jpg"):
        VideoSource(empty)
    with pytest.raises(DataError, match="no frames selected"):
        list(VideoSource(clip, start=50))
    with pytest.raises(DataError, match="every"):
        VideoSource(clip, every=0)


def test_truncated_file_names_the_frame_where_decoding_stopped(clip: Path, tmp_path: Path) -> None:
    data = clip.read_bytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data[: len(data) * 2 // 3])  # the moov atom (index) is at the end: gone
    try:
        source = VideoSource(broken)
    except DataError as err:
        assert "broken.mp4" in str(err)
        return
    with pytest.raises(DataError, match=r"broken.mp4: (decoding stopped at frame \d+|no frames)"):
        list(source)


def test_decoder_error_names_the_frame_index(clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import av

    real_open = av.open

    class FailingContainer:
        """Wraps a real container; its decoder raises after three frames (FFmpeg's error on a corrupt packet)."""

        def __init__(self, container):
            self.container, self.streams = container, container.streams

        def decode(self, stream):
            for n, frame in enumerate(self.container.decode(stream)):
                if n == 3:
                    raise av.InvalidDataError(1094995529, "Invalid data found when processing input")
                yield frame

        def close(self):
            self.container.close()

    source = VideoSource(clip, every=2)
    monkeypatch.setattr(av, "open", lambda *a, **k: FailingContainer(real_open(*a, **k)))
    seen = []
    with pytest.raises(DataError, match=r"clip.mp4: decoding stopped at frame 3 \(.*Invalid data"):
        for index, _ in source:
            seen.append(index)
    assert seen == [0, 2]
