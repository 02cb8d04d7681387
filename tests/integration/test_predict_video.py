"""``vidseg-<paper> predict --data vidseg_common.data.datamodules.video.VideoDataModule``: a user's mp4 in, the task's
predictions plus an H.264 overlay video and a contact sheet out (issue #16).

For SSTVOS (VOS), STT (VSS) and SeqFormer (VIS), tiny random-init models (seed 0 from the paper's synthetic config):
predicting the mp4 writes the same predictions as predicting a folder holding its decoded frames (the
``VideoSource`` folder mode), and the overlay decodes as H.264 with one frame per video frame at the frame size.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from vidseg_common.data.datamodules.video import VideoDataModule
from vidseg_common.data.formats.png import read_index_png, write_index_png
from vidseg_common.data.video_source import VideoSource
from vidseg_common.errors import ConfigError
from vidseg_common.viz import write_mp4

REPO = Path(__file__).resolve().parents[2]
H, W, T = 64, 96, 6
VIDEO_DATA = "vidseg_common.data.datamodules.video.VideoDataModule"

PAPERS: dict[str, dict[str, Any]] = {
    "sstvos": dict(task="vos", data=["--data.first_mask", "{mask}", "--data.pad_divisor", "16"],
                   model=["--model.hidden_dim", "16", "--model.num_heads", "2", "--model.ffn_dim", "16",
                          "--model.pre_dim", "8", "--model.stage_channels", "[16, 16]", "--model.aspp_channels", "16",
                          "--model.decoder_channels", "16"]),
    "stt": dict(task="vss", data=["--data.num_previous", "2", "--data.pad_divisor", "32"],
                model=["--model.num_key_frames", "2", "--model.nsm_radius", "1"]),
    "seqformer": dict(task="vis", data=["--data.pad_divisor", "32"],
                      model=["--model.backbone", "test_resnet", "--model.num_queries", "4", "--model.hidden_dim", "32",
                             "--model.ffn_dim", "64", "--model.num_decoder_layers", "2", "--model.num_heads", "4",
                             "--model.encoder_points", "2", "--model.decoder_points", "2", "--model.top_k", "3"]),
}


def frame(t: int) -> np.ndarray:
    """Grey background, a white square moving right and a red one moving left."""
    image = np.full((H, W, 3), 60, np.uint8)
    image[20:36, 4 + 6 * t : 20 + 6 * t] = 255
    image[40:56, 70 - 4 * t : 86 - 4 * t] = (200, 40, 40)
    return image


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("video")
    write_mp4(root / "clip.mp4", [frame(t) for t in range(T)], fps=10)
    folder = root / "frames" / "clip"  # the same name as the file's stem: the same output names
    folder.mkdir(parents=True)
    for index, decoded in VideoSource(root / "clip.mp4"):
        Image.fromarray(decoded).save(folder / f"{index:05d}.png")
    ids = np.zeros((H, W), np.uint8)
    ids[20:36, 4:20], ids[40:56, 70:86] = 1, 2
    write_index_png(root / "mask.png", ids)
    Image.fromarray(np.array([[0, 0, 0], [255, 255, 0], [0, 255, 255]], np.uint8)[ids]).save(root / "mask_rgb.png")
    np.save(root / "mask.npy", ids)
    return {"video": root / "clip.mp4", "folder": folder, "mask": root / "mask.png", "root": root}


def probe(path: Path) -> tuple[str, int, tuple[int, int]]:
    with av.open(str(path)) as container:
        decoded = list(container.decode(video=0))
        return container.streams.video[0].codec_context.name, len(decoded), (decoded[0].height, decoded[0].width)


def predict(paper: str, source: Path, out: Path, mask: Path) -> None:
    main = __import__(f"vidseg_{paper}.cli", fromlist=["main"]).main
    spec = PAPERS[paper]
    data = [arg.format(mask=mask) for arg in spec["data"]]
    main(["predict", "-c", str(REPO / "experiments/_base/trainer_cpu.yaml"), "-c", str(REPO / f"experiments/{paper}/synthetic.yaml"),
          *spec["model"], "--data", VIDEO_DATA, "--data.video", str(source), "--data.task", spec["task"], *data,
          "--trainer.enable_progress_bar", "false", "--model.output_dir", str(out)])


def outputs(paper: str, out: Path) -> Any:
    if paper == "seqformer":
        return json.loads((out / "results.json").read_text())
    pngs = sorted(out.rglob("*.png"))
    return {p.relative_to(out).as_posix(): read_index_png(p) for p in pngs if not p.name.endswith("_sheet.png")}


@pytest.mark.parametrize("paper", list(PAPERS))
def test_video_and_frame_folder_predict_the_same(paper: str, inputs: dict[str, Path], tmp_path: Path,
                                                  mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "1")
    predict(paper, inputs["video"], tmp_path / "from_video", inputs["mask"])
    predict(paper, inputs["folder"], tmp_path / "from_folder", inputs["mask"])
    got, expected = outputs(paper, tmp_path / "from_video"), outputs(paper, tmp_path / "from_folder")
    if paper == "seqformer":
        assert got == expected and {item["video_id"] for item in got} == {0}
        assert all(len(item["segmentations"]) == T for item in got)
    else:
        names = {"sstvos": [f"clip/{t:05d}.png" for t in range(T)], "stt": [f"clip_{t:05d}.png" for t in range(T)]}[paper]
        assert sorted(got) == names and sorted(expected) == names
        for name in names:
            assert got[name].shape == (H, W)
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
        if paper == "sstvos":
            np.testing.assert_array_equal(got["clip/00000.png"], read_index_png(inputs["mask"]))  # frame 0 = the mask
    for out in (tmp_path / "from_video", tmp_path / "from_folder"):
        assert probe(out / "clip_overlay.mp4") == ("h264", T, (H, W))
        sheet = np.asarray(Image.open(out / "clip_sheet.png"))
        assert sheet.shape[2] == 3 and sheet.shape[0] >= H and sheet.shape[1] >= W


def test_batches_follow_the_task_contracts(inputs: dict[str, Path]) -> None:
    root = inputs["root"]
    batches = {}
    for mask in ("mask.png", "mask_rgb.png", "mask.npy"):
        module = VideoDataModule(str(inputs["video"]), "vos", first_mask=str(root / mask), pad_divisor=16, overlay=False)
        (batch,) = list(module.predict_dataloader())
        batches[mask] = batch
    vos = batches["mask.png"]
    assert vos["frames"].shape == (1, T, 3, H, W) and vos["masks"].shape == (1, T, H, W)
    assert int(vos["num_objects"][0]) == 2 and (vos["masks"][0, 1:] == 255).all()
    meta = vos["meta"][0]
    assert meta["frames"] == [f"{t:05d}" for t in range(T)] and meta["first_frame"] == {1: 0, 2: 0}
    assert (tuple(meta["size"]), tuple(meta["resized_size"]), tuple(meta["padded_size"])) == ((H, W), (H, W), (H, W))
    for mask in ("mask_rgb.png", "mask.npy"):  # every mask format gives the same ids
        assert (batches[mask]["masks"] == vos["masks"]).all(), mask

    vis = VideoDataModule(str(inputs["video"]), "vis", pad_divisor=32, max_side=48, every=2, overlay=False)
    (batch,) = list(vis.predict_dataloader())
    assert batch["frames"].shape == (1, 3, 3, 32, 64)  # 32×48 padded to multiples of 32
    assert batch["targets"][0]["masks"].shape == (0, 3, 32, 64) and batch["meta"][0]["video_id"] == 0
    assert (tuple(batch["meta"][0]["size"]), tuple(batch["meta"][0]["resized_size"])) == ((H, W), (32, 48))

    vss = VideoDataModule(str(inputs["video"]), "vss", pad_divisor=32, num_previous=2, overlay=False)
    samples = list(vss.predict_dataloader())
    assert len(samples) == T and samples[0]["frames"].shape == (1, 3, 3, 64, 96)
    assert samples[0]["meta"][0]["frames"] == ["00000"] * 3 and samples[1]["meta"][0]["frames"] == ["00000", "00000", "00001"]
    assert samples[4]["meta"][0]["sample"] == "clip_00004" and (samples[4]["label"] == 255).all()
    assert (samples[1]["frames"][0, 0] == samples[0]["frames"][0, 0]).all()

    with pytest.raises(ConfigError, match="first_mask is required"):
        VideoDataModule(str(inputs["video"]), "vos")
    with pytest.raises(ConfigError, match="only predicts"):
        VideoDataModule(str(inputs["video"]), "vis").setup("fit")
