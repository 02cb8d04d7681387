"""VisTR (Wang et al., CVPR'21), the released code github.com/Epiphqny/VisTR (``models/``, ``inference.py``), against
our ``vidseg_defvistr`` with ``attention: dense``.

Running the released code on CPU and today's torch / torchvision, without copying any of it (everything is imported
from the checkout at ``root``, and only patched where it cannot run here):

* ``models/dcn`` (detectron2's DCNv1) needs its compiled CUDA extension ``_C``: an empty ``models.dcn._C`` module
  is registered so that ``deform_conv.py`` imports, and ``DeformConv.forward`` is replaced by
  ``torchvision.ops.deform_conv2d`` with the module's own ``weight`` (same layout ``(C_out, C_in, 3, 3)``, same
  offset layout and bilinear boundary rule; the module asserts one group, one offset group, no bias);
* ``util/misc.py`` tests ``float(torchvision.__version__[:3]) < 0.7`` ("0.2" for 0.29) and would import torchvision
  0.5's ``_new_empty_tensor``: the version string reads "0.7" while the released modules import;
* ``models/backbone.py`` asks torchvision for ImageNet weights when ``is_main_process()``: it is told it is not (no
  download; the weights are random anyway);
* ``inference.py`` imports the training-data and training-loop modules (``datasets``, ``engine``: the YouTube-VOS
  cocoapi fork, OpenCV) that its ``main`` never uses: empty stand-ins are registered for them; its frames are moved
  to the GPU with ``.cuda()``, made a no-op while it runs; its ``transform`` (``Resize(300)``, ToTensor, Normalize)
  resizes to a short side of 64 instead of 300 (CPU), from 80×120 PNG frames to the 64×96 network input; our
  ``infer`` gets the same tensor, with ``meta`` sizes original 80×120, resized = padded = 64×96.

``inference.py`` never calls ``model.eval()``: the released results were computed with the transformer's dropout
(0.1) active. Its ``main`` is run here with ``--dropout 0`` (an option of the released parser), which makes its
train-mode forward deterministic and equal to the eval-mode forward (the backbone's BatchNorm is frozen, the heads
use GroupNorm/LayerNorm); our model evaluates in eval mode (no dropout), as the paper's method implies.

The released initialisation leaves many tensors constant (zero biases, unit norms, the frozen BatchNorm statistics,
the zero ``conv_offset`` of the DCN): :func:`build_reference` perturbs every constant tensor (seeded by the caller),
so that a misplaced bias, a swapped norm or a wrong DCN offset layout shows in the outputs.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reference import Release, Row, cuda_is_cpu, perturb_constants, released_code, stub

_CONFIGS = ("experiments/defvistr/ytvis19.yaml", "experiments/defvistr/vistr_dense.yaml")
RELEASES = {
    "vistr_r50": Release(
        paper="defvistr", rules="vistr", configs=_CONFIGS, overrides={"pretrained": False},
        description="Epiphqny/VisTR vistr_r50.pth (README 'Models': VisTR, R50, 36.2 mask AP on YouTube-VIS 2019)",
    ),
    "vistr_r101": Release(
        paper="defvistr", rules="vistr", configs=_CONFIGS,
        overrides={"pretrained": False, "backbone": "resnet101.tv_in1k"},
        description="Epiphqny/VisTR vistr_r101.pth (README 'Models': VisTR, R101, 40.1 mask AP on YouTube-VIS 2019)",
    ),
}
BACKBONES = {"vistr_r50": "resnet50", "vistr_r101": "resnet101"}
NUM_FRAMES, NUM_INSTANCES = 36, 10
"""The released clip layout (``--num_frames 36 --num_queries 360``, ``inference.py --num_ins 10``) = our config's."""
ORIGINAL_SIZE, FRAME_SIZE = (80, 120), (64, 96)
"""(H, W) of the compared video and of the network input after the resize (small: CPU). At a network input of
60×90 (not a multiple of 32, like VisTR's 300-short-side frames) the raw outputs agree as closely (≤ 3.6e-6) and 7 of
the 3.5 M result pixels flip, all where the released logit is within 2.7e-7 of the threshold (float32 rounding)."""
_RELEASED_MODULES = ("models", "util", "datasets", "engine", "inference")



def _deform_conv_forward(self: nn.Module, x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """``DeformConv.forward`` through ``torchvision.ops.deform_conv2d`` (replaces the CUDA-only ``_C`` call)."""
    from torchvision.ops import deform_conv2d

    if self.groups != 1 or self.deformable_groups != 1 or self.norm is not None or self.activation is not None:
        raise NotImplementedError("the VisTR adapter's DeformConv covers groups=1, deformable_groups=1, no norm/act")
    return deform_conv2d(x, offset, self.weight, None, self.stride, self.padding, self.dilation)



@contextlib.contextmanager
def _released(root: Path) -> Iterator[types.SimpleNamespace]:
    """Import the released ``models`` and ``inference`` from ``root`` (see the module docstring for the patches);
    the released top-level names (``models``, ``util``, ...) are removed from ``sys.modules`` again on exit, so other
    adapters' checkouts with the same names do not collide."""
    import torchvision

    root = Path(root).resolve()
    if not (root / "models" / "vistr.py").is_file():
        raise FileNotFoundError(f"{root}: not a checkout of Epiphqny/VisTR (no models/vistr.py)")
    stubs = {"models.dcn._C": stub("models.dcn._C"),
             "datasets": stub("datasets", build_dataset=None, get_coco_api_from_dataset=None),
             "engine": stub("engine", evaluate=None, train_one_epoch=None)}
    version = torchvision.__version__
    with released_code(root, _RELEASED_MODULES, stubs):
        torchvision.__version__ = "0.7.0"
        try:
            import inference
            import models
            import models.backbone
            import models.dcn.deform_conv
        finally:
            torchvision.__version__ = version
        models.backbone.is_main_process = lambda: False
        models.dcn.deform_conv.DeformConv.forward = _deform_conv_forward
        with cuda_is_cpu():
            yield types.SimpleNamespace(models=models, inference=inference)

def _args(inference: Any, release: str, *extra: str) -> Any:
    """The released parser's arguments for ``release`` (``--masks``: the segmentation model, as released)."""
    return inference.get_args_parser().parse_args([
        "--masks", "--backbone", BACKBONES[release], "--device", "cpu",
        "--num_frames", str(NUM_FRAMES), "--num_queries", str(NUM_FRAMES * NUM_INSTANCES),
        "--num_ins", str(NUM_INSTANCES), *extra,
    ])


def build_reference(root: Path, release: str) -> nn.Module:
    """The released ``VisTRsegm`` of ``release`` (``build(args)`` of ``models/vistr.py``): random, constants
    perturbed."""
    with _released(root) as released:
        model, _, _ = released.models.build_model(_args(released.inference, release))
    perturb_constants(model, {"conv_offset.bias": lambda t: t.uniform_(-1.5, 1.5),  # DCN offsets: ±1.5 px
                              "conv_offset.weight": lambda t: t.normal_(0.0, 0.01)})
    return model


def _frames(seed: int) -> np.ndarray:
    """``(T, H, W, 3) uint8``: smooth random colour fields plus noise (seeded)."""
    rng = np.random.default_rng(seed)
    h, w = ORIGINAL_SIZE
    base = rng.uniform(0, 255, (NUM_FRAMES, 3, h // 8, w // 8))
    smooth = torch.nn.functional.interpolate(torch.from_numpy(base), size=(h, w), mode="bilinear", align_corners=False)
    frames = smooth.numpy().transpose(0, 2, 3, 1) + rng.normal(0, 20, (NUM_FRAMES, h, w, 3))
    return np.clip(frames, 0, 255).astype(np.uint8)


def _released_results(released: Any, release: str, reference: nn.Module, frames: np.ndarray, workdir: Path
                      ) -> tuple[list[dict], torch.Tensor]:
    """Run the released ``inference.main`` on ``frames`` written as PNGs, with ``reference``'s weights; its results
    JSON and the normalised frames ``(T, 3, H, W)`` its ``transform`` produced."""
    import torchvision.transforms as T
    from PIL import Image

    images = workdir / "JPEGImages"
    images.mkdir()
    names = []
    for t, frame in enumerate(frames):
        names.append(f"clip/{t:05d}.png")
        (images / "clip").mkdir(exist_ok=True)
        Image.fromarray(frame).save(images / names[-1])
    (workdir / "valid.json").write_text(json.dumps(
        {"videos": [{"id": 1, "length": len(names), "file_names": names, "width": frames.shape[2],
                     "height": frames.shape[1]}]}))
    torch.save({"model": reference.state_dict()}, workdir / "model.pth")
    inference = released.inference
    inference.transform = T.Compose([T.Resize(FRAME_SIZE[0]) if isinstance(t, T.Resize) else t
                                     for t in inference.transform.transforms])
    args = _args(inference, release, "--dropout", "0", "--model_path", str(workdir / "model.pth"),
                 "--img_path", str(images), "--ann_path", str(workdir / "valid.json"),
                 "--save_path", str(workdir / "results.json"))
    inference.main(args)
    tensors = torch.stack([inference.transform(Image.open(images / name)) for name in names])
    return json.loads((workdir / "results.json").read_text()), tensors


def _decode(segmentation: dict | None, size: tuple[int, int]) -> np.ndarray:
    import pycocotools.mask as mask_util

    if segmentation is None:
        return np.zeros(size, dtype=bool)
    return mask_util.decode(segmentation).astype(bool)


def compare(root: Path, release: str, ours: Any, reference: nn.Module, seed: int) -> list[Row]:
    """Raw outputs of one 36-frame clip (eval mode) and ``inference.py``'s results JSON against ``ours.infer``."""
    frames = _frames(seed)
    with _released(root) as released, tempfile.TemporaryDirectory() as tmp:
        results, clip = _released_results(released, release, reference, frames, Path(tmp))
    reference.eval()
    ref_out = reference(clip)
    our_out = ours(clip[None])
    rows: list[Row] = []
    for key in ("pred_logits", "pred_boxes", "pred_masks"):
        rows.append((key, (ref_out[key] - our_out[key]).abs().max().item(),
                     f"{tuple(our_out[key].shape)}, released values in ±{ref_out[key].abs().max().item():.3g}"))
    for key in ("pred_logits", "pred_boxes"):
        diff = max((r[key] - o[key]).abs().max().item() for r, o in zip(ref_out["aux_outputs"], our_out["aux_outputs"]))
        rows.append((f"aux_outputs.{key}", diff, f"{len(our_out['aux_outputs'])} decoder layers"))

    assert tuple(clip.shape[-2:]) == FRAME_SIZE
    h, w = ORIGINAL_SIZE
    size = {"size": (h, w), "resized_size": FRAME_SIZE, "padded_size": FRAME_SIZE, "video_id": 1}
    preds = ours.infer({"frames": clip[None], "meta": [size]})
    rows.append(("results: entries", float(abs(len(results) - len(preds))),
                 f"inference.py {len(results)}, ours {len(preds)}"))
    if len(results) == len(preds):
        score = max((abs(r["score"] - s) for r, s in zip(results, preds.scores.tolist())), default=0.0)
        labels = sum(r["category_id"] != c for r, c in zip(results, preds.labels.tolist()))
        ref_masks = np.stack([np.stack([_decode(s, (h, w)) for s in r["segmentations"]]) for r in results]) \
            if results else np.zeros((0, NUM_FRAMES, h, w), dtype=bool)
        differs = ref_masks != preds.masks.numpy()  # (R, T, H0, W0)
        differ = int(differs.sum())
        nulls = sum(s is None for r in results for s in r["segmentations"])
        # the released logits at the original size (as inference.py computes them): how far from the threshold
        # are the pixels that differ (float32 rounding can only flip pixels whose logit is within ~1e-6 of 0)
        masks = ref_out["pred_masks"][0].view(NUM_FRAMES, NUM_INSTANCES, *ref_out["pred_masks"].shape[-2:])
        logits = torch.nn.functional.interpolate(masks, size=(h, w), mode="bilinear").transpose(0, 1)  # (N, T, H0, W0)
        kept = [m for m in range(NUM_INSTANCES) if bool((logits[m].sigmoid() > 0.5).any())]
        near = logits[kept].abs().numpy()[differs].max() if differ and len(kept) == len(results) else 0.0
        rows += [
            ("results: score", score, "mean over frames of the max class probability"),
            ("results: category_id", float(labels), "entries whose category differs (mode of per-frame argmax)"),
            ("results: masks", float(differ), f"pixels differing of {ref_masks.size} ({int(ref_masks.sum())} "
             f"foreground, at the original {h}×{w}; {nulls} null frames in inference.py = empty masks"
             + (f"; the released |logit| there ≤ {near:.2g}" if differ else "") + ")"),
        ]
    return rows
