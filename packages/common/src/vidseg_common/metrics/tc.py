"""Temporal consistency (TC) of video semantic segmentation, as ETC computes it, plus a "clean" mode.

``mode="etc"`` reproduces ETC's ``tool/eval_tc.py`` (docs/reference/vss.md §3.1): for every consecutive pair the
prediction of frame t+1 is warped back to frame t with flownet2's ``Resample2d`` (bilinear on the *class
ids*, border clamp, float32, then ``astype(uint8)`` truncation, so boundary pixels may get an
intermediate id), there is no occlusion mask, and ``intersectionAndUnion(pred_t, warped, C, 255)``
areas are summed over all pairs of all clips; ``TC = mean_c ΣI_c / (ΣU_c + 1e-10)`` over all C classes
(a class never seen scores 0).

``mode="clean"`` is our variant: nearest-neighbour warp, pixels whose target falls outside the frame
or that fail the forward-backward check ``|f + b(p+f)|² > 0.01 (|f|² + |b(p+f)|²) + 0.5`` are ignored,
and the mean runs over classes with a non-empty union. Both states are sums, so DDP sync is exact.
TC depends on the flow backend (:mod:`vidseg_common.metrics.flow`): always report backend and mode.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import Tensor
from torchmetrics import Metric

Mode = Literal["etc", "clean"]


def _grid(flow: Tensor) -> tuple[Tensor, Tensor]:
    _, height, width, _ = flow.shape
    ys = torch.arange(height, device=flow.device, dtype=torch.float32)[None, :, None]
    xs = torch.arange(width, device=flow.device, dtype=torch.float32)[None, None, :]
    return xs + flow[..., 0].float(), ys + flow[..., 1].float()


def resample_bilinear(values: Tensor, flow: Tensor) -> Tensor:
    """flownet2 ``Resample2d`` (kernel 1): ``out(p) = bilinear(values, p + f(p))``, corners clamped.

    Args:
        values: ``(B, H, W)`` (cast to float32); flow: ``(B, H, W, 2)`` (u, v) pixels.

    Returns:
        ``(B, H, W)`` float32, accumulated in the kernel's order.
    """
    batch, height, width = values.shape
    xf, yf = _grid(flow)
    x0, y0 = torch.floor(xf), torch.floor(yf)
    alpha, beta = xf - x0, yf - y0
    xl = x0.long().clamp(0, width - 1)
    xr = (x0.long() + 1).clamp(0, width - 1)
    yt = y0.long().clamp(0, height - 1)
    yb = (y0.long() + 1).clamp(0, height - 1)
    flat = values.float().reshape(batch, -1)

    def at(y: Tensor, x: Tensor) -> Tensor:
        return torch.gather(flat, 1, (y * width + x).reshape(batch, -1)).reshape(batch, height, width)

    out = torch.zeros_like(xf)
    out = out + (1.0 - alpha) * (1.0 - beta) * at(yt, xl)
    out = out + alpha * (1.0 - beta) * at(yt, xr)
    out = out + (1.0 - alpha) * beta * at(yb, xl)
    out = out + alpha * beta * at(yb, xr)
    return out


def warp_ids_etc(ids_t1: Tensor, flow: Tensor) -> Tensor:
    """ETC's warp of the t+1 prediction into frame t: bilinear on ids, then uint8 truncation."""
    return resample_bilinear(ids_t1, flow).to(torch.uint8).long()


def warp_ids_clean(ids_t1: Tensor, flow: Tensor, flow_back: Tensor | None, ignore_index: int = 255) -> Tensor:
    """Nearest-neighbour warp; out-of-frame targets and forward-backward-inconsistent pixels → ``ignore_index``."""
    batch, height, width = ids_t1.shape
    xf, yf = _grid(flow)
    xi, yi = torch.floor(xf + 0.5).long(), torch.floor(yf + 0.5).long()
    inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
    idx = (yi.clamp(0, height - 1) * width + xi.clamp(0, width - 1)).reshape(batch, -1)
    out = torch.gather(ids_t1.long().reshape(batch, -1), 1, idx).reshape(batch, height, width)
    keep = inside
    if flow_back is not None:
        back = torch.stack([resample_bilinear(flow_back[..., c], flow) for c in range(2)], dim=-1)
        fwd = flow.float()
        diff = ((fwd + back) ** 2).sum(-1)
        occluded = diff > 0.01 * ((fwd**2).sum(-1) + (back**2).sum(-1)) + 0.5
        keep = keep & ~occluded
    return torch.where(keep, out, torch.full_like(out, ignore_index))


def intersection_and_union(output: Tensor, target: Tensor, num_classes: int, ignore_index: int = 255) -> tuple[Tensor, Tensor, Tensor]:
    """ETC's ``intersectionAndUnion``: per-class (intersection, output area, target area), target-ignore masked."""
    output = torch.where(target == ignore_index, torch.full_like(output, ignore_index), output).reshape(-1)
    target = target.reshape(-1)

    def hist(v: Tensor) -> Tensor:
        v = v[(v >= 0) & (v < num_classes)]
        return torch.bincount(v, minlength=num_classes).double()

    return hist(output[output == target]), hist(output), hist(target)


class TemporalConsistency(Metric):
    """TC over clips of predictions and their forward flows (see the module docstring).

    Args:
        num_classes: 19 for Cityscapes trainIds.
        mode: ``"etc"`` (exactly ETC) or ``"clean"``.
        ignore_index: label ignored in the warped map.
    """

    full_state_update: ClassVar[bool] = False
    higher_is_better: ClassVar[bool] = True
    is_differentiable: ClassVar[bool] = False

    def __init__(self, num_classes: int = 19, mode: Mode = "etc", ignore_index: int = 255, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in ("etc", "clean"):
            raise ValueError(f"mode must be 'etc' or 'clean', got {mode!r}")
        self.num_classes, self.mode, self.ignore_index = num_classes, mode, ignore_index
        for name in ("intersection", "area_pred", "area_warped"):
            self.add_state(name, default=torch.zeros(num_classes, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, preds: Tensor, flows: Tensor, flows_back: Tensor | None = None) -> None:
        """Add the ``T − 1`` consecutive pairs of one clip.

        Args:
            preds: ``(T, H, W)`` class ids of the clip's frames.
            flows: ``(T − 1, H, W, 2)`` forward flow t → t+1 (u, v) in pixels.
            flows_back: ``(T − 1, H, W, 2)`` backward flow t+1 → t (clean mode's occlusion check).
        """
        if flows.shape[0] != preds.shape[0] - 1 or flows.shape[1:3] != preds.shape[1:]:
            raise ValueError(f"flows {tuple(flows.shape)} do not fit predictions {tuple(preds.shape)}")
        pred_t, pred_t1 = preds[:-1].long(), preds[1:].long()
        if self.mode == "etc":
            warped = warp_ids_etc(pred_t1, flows)
        else:
            warped = warp_ids_clean(pred_t1, flows, flows_back, self.ignore_index)
        inter, area_p, area_w = intersection_and_union(pred_t, warped, self.num_classes, self.ignore_index)
        self.intersection += inter.to(self.intersection.device)
        self.area_pred += area_p.to(self.area_pred.device)
        self.area_warped += area_w.to(self.area_warped.device)

    def compute(self) -> dict[str, Tensor]:
        """``{"TC": scalar, "IoU": (C,)}`` (float64)."""
        union = self.area_pred + self.area_warped - self.intersection
        if self.mode == "etc":
            iou = self.intersection / (union + 1e-10)
            return {"TC": iou.mean(), "IoU": iou}
        iou = torch.where(union > 0, self.intersection / union.clamp_min(1), torch.full_like(union, float("nan")))
        return {"TC": iou.nanmean(), "IoU": iou}
