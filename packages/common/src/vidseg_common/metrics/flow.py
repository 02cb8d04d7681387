"""Optical-flow backends for temporal consistency: ground-truth ``.flo`` files, OpenCV DIS, RAFT.

All backends return forward flow ``t → t+1`` as ``(H, W, 2) float32`` (u, v) in pixels, with the
convention ``I_t(p) ≈ I_{t+1}(p + f(p))`` (docs/reference/vss.md §3.1):

* :class:`GroundTruthFlow`: ``<flow_root>/<video>/<frame_t>.flo`` (synthetic data);
* :class:`DISFlow`: ``cv2.DISOpticalFlow`` (default; no weights needed);
* :class:`RAFTFlow`: torchvision RAFT, only from a local weights file (never downloaded).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import torch

from vidseg_common.data.formats.flow import read_flo
from vidseg_common.errors import ConfigError, DataError


class GroundTruthFlow:
    """Reads the exact flow written by the synthetic generator."""

    name = "gt"

    def __init__(self, flow_root: str | os.PathLike[str]) -> None:
        self.flow_root = Path(flow_root)

    def __call__(self, video: str, frame: str, image_t: np.ndarray | None = None, image_t1: np.ndarray | None = None) -> np.ndarray:
        flow = read_flo(self.flow_root / video / f"{frame}.flo")
        if image_t is not None and flow.shape[:2] != image_t.shape[:2]:
            raise DataError(f"{self.flow_root / video / frame}.flo: flow {flow.shape[:2]} vs frame {image_t.shape[:2]}")
        return flow


class DISFlow:
    """OpenCV DIS optical flow on grey images (``preset``: ultrafast, fast or medium)."""

    name = "dis"
    _PRESETS: ClassVar[dict[str, int]] = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}  # fmt: skip

    def __init__(self, preset: str = "medium") -> None:
        if preset not in self._PRESETS:
            raise ConfigError(f"DIS preset {preset!r} is not one of {sorted(self._PRESETS)}")
        self.preset = preset

    def __call__(self, video: str, frame: str, image_t: np.ndarray, image_t1: np.ndarray) -> np.ndarray:
        dis = cv2.DISOpticalFlow_create(self._PRESETS[self.preset])
        grey = [np.ascontiguousarray(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) if im.ndim == 3 else im) for im in (image_t, image_t1)]
        return dis.calc(grey[0], grey[1], None).astype(np.float32)


class RAFTFlow:
    """torchvision ``raft_large`` / ``raft_small`` with weights from a local ``state_dict`` file."""

    name = "raft"

    def __init__(self, weights: str | os.PathLike[str], small: bool = False, iters: int = 12, device: str = "cpu") -> None:
        from torchvision.models.optical_flow import raft_large, raft_small

        path = Path(weights)
        if not path.is_file():
            raise ConfigError(f"RAFT weights {path} not found; pass a local state_dict file (nothing is downloaded)")
        self.model = (raft_small if small else raft_large)(weights=None, progress=False)
        self.model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.model.eval().to(device)
        self.iters, self.device = iters, torch.device(device)

    @torch.no_grad()
    def __call__(self, video: str, frame: str, image_t: np.ndarray, image_t1: np.ndarray) -> np.ndarray:
        height, width = image_t.shape[:2]
        pad_h, pad_w = (-height) % 8, (-width) % 8

        def prep(im: np.ndarray) -> torch.Tensor:
            x = torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)[None].float().to(self.device)
            x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
            return x / 127.5 - 1.0  # RAFT expects [-1, 1]

        flows = self.model(prep(image_t), prep(image_t1), num_flow_updates=self.iters)
        return flows[-1][0, :, :height, :width].permute(1, 2, 0).cpu().numpy().astype(np.float32)
