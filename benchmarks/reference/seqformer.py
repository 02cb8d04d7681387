"""SeqFormer (Wu et al., ECCV'22), the released code github.com/wjf5203/SeqFormer (``models/``, ``inference.py``),
against our ``vidseg_seqformer``; and the Deformable DETR checkpoint layout its stage 1 starts from
(github.com/fundamentalvision/Deformable-DETR, ``--with_box_refine``), loaded into the same model of ours.

Running the released code on CPU and today's torch / torchvision, without copying any of it (everything is imported
from the checkout at ``root``, and only patched where it cannot run here):

* ``models/ops/functions/ms_deform_attn_func.py`` imports the compiled CUDA extension ``MultiScaleDeformableAttention``:
  an empty module of that name is registered, and the ``MSDeformAttnFunction`` that ``models/ops/modules/
  ms_deform_attn.py`` calls is replaced by the released file's own pure-PyTorch ``ms_deform_attn_core_pytorch``
  (same arguments less ``level_start_index`` / ``im2col_step``; both repositories ship it);
* ``util/misc.py`` tests ``float(torchvision.__version__[:3]) < 0.5`` ("0.2" for 0.29) and would import torchvision
  0.4's ``_NewEmptyTensorOp``: the version string reads "0.8" while the released modules import;
* ``models/backbone.py`` asks torchvision for ImageNet weights when ``is_main_process()``: it is told it is not (no
  download; the weights are random anyway);
* ``inference.py`` (SeqFormer) and ``main.py`` (Deformable DETR, only for its argument parser) import the
  training-data and training-loop modules (``datasets``, ``engine``) that are never used here: empty stand-ins are
  registered for them; ``inference.py`` moves its frames to the GPU with ``.cuda()``, made a no-op while it runs,
  and its ``transform`` (resize to a short side of 360, ToTensor, Normalize) keeps ToTensor + Normalize only, so both
  models see the same small frames (our ``infer`` gets the same tensor with ``meta`` sizes = the frame size: no
  resize, no padding, so its up-sampling to the original size is the released one, 1:1).

The released initialisation leaves many tensors constant (zero biases, unit norms, the frozen BatchNorm statistics,
the zero ``sampling_offsets`` / ``attention_weights`` weights, the zero last layer of the box MLPs):
:func:`build_reference` perturbs every constant tensor (seeded by the caller), so that a misplaced bias, a swapped
norm or an offset that ignores its query shows in the outputs.

The released ``SeqFormer.inference`` computes every decoder layer's class logits, boxes and masks but returns the
last layer's only: :func:`compare` records what each layer passes to ``forward_mask_head_train`` (the released
method, wrapped, not replaced) to compare the auxiliary layers as well. ``inference.py`` never pads; a second clip
with bottom/right padding goes through the released training-time ``SeqFormer.forward(..., train=False)`` (padding
masks, valid ratios, and the mask head's reference points scaled by the size before padding). The raw outputs are
also compared in float64 (both models cast), which separates float32 rounding from a difference in the computation:
the mask logits of a random model reach a few hundred (relative coordinates in pixels), so their float32 rounding
exceeds 1e-4 in absolute terms.
"""

from __future__ import annotations

import contextlib
import io
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

_R50 = ("experiments/seqformer/ytvis19_r50.yaml",)
RELEASES = {
    "seqformer_r50": Release(
        paper="seqformer", rules="seqformer", configs=_R50, overrides={"pretrained": False},
        description="wjf5203/SeqFormer SeqFormer_r50 (README model zoo: R50, 47.4 AP on YouTube-VIS 2019; "
                    "'model' entry of the .pth)",
    ),
    "seqformer_r101": Release(
        paper="seqformer", rules="seqformer", configs=(*_R50, "experiments/seqformer/ytvis19_r101.yaml"),
        overrides={"pretrained": False},
        description="wjf5203/SeqFormer SeqFormer_r101 (README model zoo: R101, 49.0 AP on YouTube-VIS 2019)",
    ),
    "deformable_detr_r50": Release(
        paper="seqformer", rules="deformable_detr", configs=_R50, overrides={"pretrained": False},
        description="fundamentalvision/Deformable-DETR r50_deformable_detr_plus_iterative_bbox_refinement "
                    "(COCO, 91 classes; the layout SeqFormer's stage 1 starts from)",
    ),
}
BACKBONES = {"seqformer_r50": "resnet50", "seqformer_r101": "resnet101", "deformable_detr_r50": "resnet50"}
NUM_FRAMES = 3
FRAME_SIZE = (64, 96)
"""(H, W) of the compared frames (small: CPU; multiples of 32, so neither model pads)."""
PADDED_CONTENT = (48, 80)
"""(h, w) of the frames of the padded comparison (padded to ``FRAME_SIZE``)."""
_RELEASED_MODULES = ("models", "util", "datasets", "engine", "inference", "main", "MultiScaleDeformableAttention")



class _PyTorchCore:
    """Stands in for the CUDA ``MSDeformAttnFunction``: ``apply`` calls the released ``ms_deform_attn_core_pytorch``."""

    def __init__(self, core: Any) -> None:
        self.core = core

    def apply(self, value: torch.Tensor, shapes: torch.Tensor, level_start_index: torch.Tensor,
              locations: torch.Tensor, weights: torch.Tensor, im2col_step: int) -> torch.Tensor:
        return self.core(value, [(int(h), int(w)) for h, w in shapes.tolist()], locations, weights)


@contextlib.contextmanager
def _released(root: Path, release: str) -> Iterator[types.SimpleNamespace]:
    """Import the released ``models`` (and ``inference`` / ``main`` for their parsers) from ``root`` (see the module
    docstring for the patches); the released top-level names are removed from ``sys.modules`` again on exit, so
    other adapters' checkouts with the same names (``models``, ``util``) do not collide."""
    import torchvision

    root = Path(root).resolve()
    detr = release.startswith("deformable_detr")
    marker = root / "models" / ("deformable_detr.py" if detr else "seqformer.py")
    if not marker.is_file():
        repository = "fundamentalvision/Deformable-DETR" if detr else "wjf5203/SeqFormer"
        raise FileNotFoundError(f"{root}: not a checkout of {repository} (no models/{marker.name})")
    stubs = {"MultiScaleDeformableAttention": stub("MultiScaleDeformableAttention"),
             "datasets": stub("datasets", build_dataset=None, get_coco_api_from_dataset=None),
             "datasets.samplers": stub("datasets.samplers"),
             "engine": stub("engine", evaluate=None, train_one_epoch=None)}
    version = torchvision.__version__
    with released_code(root, _RELEASED_MODULES, stubs):
        torchvision.__version__ = "0.8.0"
        try:
            import models
            import models.backbone
            import models.ops.functions.ms_deform_attn_func as functions
            import models.ops.modules.ms_deform_attn as attention

            entry = __import__("main" if detr else "inference")
        finally:
            torchvision.__version__ = version
        attention.MSDeformAttnFunction = _PyTorchCore(functions.ms_deform_attn_core_pytorch)
        models.backbone.is_main_process = lambda: False
        with cuda_is_cpu():
            yield types.SimpleNamespace(models=models, entry=entry)

def _args(entry: Any, release: str, *extra: str) -> Any:
    """The released parser's arguments: SeqFormer ``inference.py --masks`` (its defaults: box refinement, relative
    coordinates, 300 queries, 42 classes); Deformable DETR ``main.py --with_box_refine`` (COCO, 91 classes)."""
    if release.startswith("deformable_detr"):
        flags = ["--with_box_refine", "--backbone", BACKBONES[release], "--device", "cpu"]
    else:
        flags = ["--masks", "--backbone", BACKBONES[release], "--device", "cpu"]
    return entry.get_args_parser().parse_args([*flags, *extra])


def build_reference(root: Path, release: str) -> nn.Module:
    """The released model of ``release`` (``build_model(args)``), random, constants perturbed."""
    with _released(root, release) as released:
        model, _, _ = released.models.build_model(_args(released.entry, release))
    perturb_constants(model)
    return model


def _frames(seed: int, size: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    """``(T, H, W, 3) uint8``: smooth random colour fields plus noise (seeded)."""
    rng = np.random.default_rng(seed)
    h, w = size
    base = rng.uniform(0, 255, (NUM_FRAMES, 3, h // 8, w // 8))
    smooth = torch.nn.functional.interpolate(torch.from_numpy(base), size=(h, w), mode="bilinear", align_corners=False)
    frames = smooth.numpy().transpose(0, 2, 3, 1) + rng.normal(0, 20, (NUM_FRAMES, h, w, 3))
    return np.clip(frames, 0, 255).astype(np.uint8)


def _write_video(frames: np.ndarray, workdir: Path) -> tuple[Path, list[str]]:
    from PIL import Image

    images = workdir / "JPEGImages"
    (images / "clip").mkdir(parents=True)
    names = [f"clip/{t:05d}.png" for t in range(len(frames))]
    for name, frame in zip(names, frames):
        Image.fromarray(frame).save(images / name)
    (workdir / "valid.json").write_text(json.dumps({"videos": [
        {"id": 1, "length": len(names), "file_names": names, "width": frames.shape[2], "height": frames.shape[1]}]}))
    return images, names


def _released_results(released: Any, release: str, reference: nn.Module, frames: np.ndarray, workdir: Path
                      ) -> tuple[list[dict], torch.Tensor]:
    """Run the released ``inference.main`` on ``frames`` written as PNGs, with ``reference``'s weights; its results
    JSON and the normalised frames ``(T, 3, H, W)`` its ``transform`` produced."""
    import torchvision.transforms as T
    from PIL import Image

    images, names = _write_video(frames, workdir)
    torch.save({"model": reference.state_dict()}, workdir / "model.pth")
    inference = released.entry
    inference.transform = T.Compose([t for t in inference.transform.transforms if not isinstance(t, T.Resize)])
    args = _args(inference, release, "--model_path", str(workdir / "model.pth"), "--img_path", str(images),
                 "--ann_path", str(workdir / "valid.json"), "--save_path", str(workdir / "results.json"))
    with contextlib.redirect_stdout(io.StringIO()):  # "Process video: 0"
        inference.main(args)
    tensors = torch.stack([inference.transform(Image.open(images / name)) for name in names])
    return json.loads((workdir / "results.json").read_text()), tensors


def _reference_layers(reference: nn.Module, clip: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """``SeqFormer.inference`` on ``clip (T, 3, H, W)``; per decoder layer ``pred_logits (Q, K)``, ``pred_boxes
    (T, Q, 4)``, ``pred_masks (Q, T, H/4, W/4)`` as the released method computes them."""
    layers: list[dict[str, torch.Tensor]] = []
    method = reference.forward_mask_head_train

    def recording(outputs: dict, *args: Any, **kwargs: Any) -> dict:
        outputs = method(outputs, *args, **kwargs)
        layers.append({"pred_logits": outputs["pred_logits"][0], "pred_boxes": outputs["pred_boxes"][0],
                       "pred_masks": outputs["pred_masks"][0][0]})
        return outputs

    reference.detr.num_frames = clip.shape[0]
    reference.forward_mask_head_train = recording
    try:
        final = reference.inference(clip, clip.shape[-1], clip.shape[-2])
    finally:
        del reference.forward_mask_head_train
    if not torch.equal(final["pred_masks"][0], layers[-1]["pred_masks"]):
        raise RuntimeError("the recorded last decoder layer is not what SeqFormer.inference returned")
    return layers


def _our_layers(ours: Any, clip: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    out = ours.model(clip[None])
    queries = torch.arange(ours.model.num_queries)
    return [{"pred_logits": out["pred_logits"][layer][0], "pred_boxes": out["pred_boxes"][layer][0],
             "pred_masks": ours.model.predict_masks(out, layer, torch.zeros_like(queries), queries)}
            for layer in range(len(out["pred_logits"]))]


def _decode(segmentation: dict | None, size: tuple[int, int]) -> np.ndarray:
    import pycocotools.mask as mask_util

    if segmentation is None:
        return np.zeros(size, dtype=bool)
    return mask_util.decode(segmentation).astype(bool)


def _our_results(ours: Any, clip: torch.Tensor, workdir: Path) -> list[dict]:
    """Our results JSON entries (``predict_step`` → ``write_youtube_vis_results``) for ``clip``; meta sizes = its
    size (no resize, no padding)."""
    from vidseg_common.data.formats.youtube_vis import write_youtube_vis_results

    h, w = clip.shape[-2:]
    meta = {"video_id": 1, "size": (h, w), "resized_size": (h, w), "padded_size": (h, w)}
    items = ours.predict_step({"frames": clip[None], "meta": [meta]}, 0)
    ours._predictions = []
    write_youtube_vis_results(workdir / "ours.json", items)
    return json.loads((workdir / "ours.json").read_text())


def _results_rows(released: list[dict], ours: list[dict]) -> list[Row]:
    """Pair the entries (same category, nearest score; the released file groups them by query, ours by score)."""
    size = FRAME_SIZE
    rows: list[Row] = [("results: entries", float(abs(len(released) - len(ours))),
                        f"inference.py {len(released)}, ours {len(ours)}")]
    unused = list(range(len(ours)))
    score, unmatched, differ, pixels, nulls = 0.0, 0, 0, 0, 0
    for entry in released:
        candidates = [i for i in unused if ours[i]["category_id"] == entry["category_id"]]
        if not candidates:
            unmatched += 1
            continue
        best = min(candidates, key=lambda i: abs(ours[i]["score"] - entry["score"]))
        unused.remove(best)
        score = max(score, abs(ours[best]["score"] - entry["score"]))
        for a, b in zip(entry["segmentations"], ours[best]["segmentations"]):
            nulls += a is None
            differ += int((_decode(a, size) != _decode(b, size)).sum()) + int((a is None) != (b is None))
            pixels += size[0] * size[1]
    rows += [
        ("results: category_id", float(unmatched), "released entries with no entry of ours of the same category"),
        ("results: score", score, "sigmoid class probability of the (query, class) pair"),
        ("results: masks", float(differ), f"pixels (and null frames) differing of {pixels} ({nulls} null frames)"),
    ]
    return rows


def _layer_rows(ref_layers: list[dict], our_layers: list[dict], dtype: str) -> list[Row]:
    rows: list[Row] = []
    for key in ("pred_logits", "pred_boxes", "pred_masks"):
        ref, our = ref_layers[-1][key], our_layers[-1][key]
        rows.append((f"{key}{dtype}", (ref - our).abs().max().item(),
                     f"last decoder layer, {tuple(our.shape)}, max |released| {ref.abs().max().item():.3g}"))
    for key in ("pred_logits", "pred_boxes", "pred_masks"):
        diff = max((r[key] - o[key]).abs().max().item() for r, o in zip(ref_layers[:-1], our_layers[:-1]))
        scale = max(r[key].abs().max().item() for r in ref_layers[:-1])
        rows.append((f"aux_outputs.{key}{dtype}", diff,
                     f"decoder layers 1–{len(our_layers) - 1}, max |released| {scale:.3g}"))
    return rows


def _padded_rows(released: Any, release: str, ours: Any, reference: nn.Module, seed: int) -> list[Row]:
    """A clip whose frames are padded (``PADDED_CONTENT`` to ``FRAME_SIZE``, bottom/right, with a padding mask), through
    the released training-time ``SeqFormer.forward(..., train=False)``: it pads the frames to a multiple of 32 itself,
    and scales the mask head's reference points by the targets' ``size`` (the image before padding). Its
    ``pred_boxes`` keep frame 0 only; its auxiliary masks are of the matched queries only (not compared)."""
    import torchvision.transforms as T

    normalize = T.Compose([T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    h, w = PADDED_CONTENT
    content = torch.stack([normalize(frame) for frame in _frames(seed + 1, PADDED_CONTENT)])  # (T, 3, h, w)
    _, criterion, _ = released.models.build_model(_args(released.entry, release))
    box = torch.tensor([[0.4, 0.5, 0.3, 0.4]]).repeat(NUM_FRAMES, 1)  # one target instance: (N·T, 4)
    target = {"labels": torch.tensor([3]), "boxes": box, "masks": torch.zeros(NUM_FRAMES, h, w),
              "valid": torch.ones(NUM_FRAMES, dtype=torch.long), "size": torch.tensor([h, w])}
    reference.detr.num_frames = NUM_FRAMES
    ref, _ = reference(list(content), [target], criterion, train=False)
    frames = content.new_zeros(1, NUM_FRAMES, 3, *FRAME_SIZE)
    frames[0, :, :, :h, :w] = content
    padding = torch.ones(1, *FRAME_SIZE, dtype=torch.bool)
    padding[0, :h, :w] = False
    out = ours.model(frames, padding)
    queries = torch.arange(ours.model.num_queries)
    masks = ours.model.predict_masks(out, -1, torch.zeros_like(queries), queries)
    note = f"padded clip ({h}×{w} in {FRAME_SIZE[0]}×{FRAME_SIZE[1]})"
    rows: list[Row] = [
        ("padded: pred_logits", (ref["pred_logits"] - out["pred_logits"][-1]).abs().max().item(), note),
        ("padded: pred_boxes", (ref["pred_boxes"] - out["pred_boxes"][-1][:, 0]).abs().max().item(),
         "frame 0 (what the released forward returns)"),
        ("padded: pred_masks", (ref["pred_masks"][0] - masks).abs().max().item(),
         f"max |released| {ref['pred_masks'].abs().max().item():.3g}; centres in pixels of the un-padded size"),
    ]
    for key in ("pred_logits", "pred_boxes"):
        diff = max((r[key] - o).abs().max().item() for r, o in zip(ref["aux_outputs"], out[key][:-1]))
        rows.append((f"padded: aux_outputs.{key}", diff, f"decoder layers 1–{len(ref['aux_outputs'])}, all frames"))
    return rows


def _compare_seqformer(root: Path, release: str, ours: Any, reference: nn.Module, seed: int) -> list[Row]:
    frames = _frames(seed)
    with _released(root, release) as released, tempfile.TemporaryDirectory() as tmp:
        results, clip = _released_results(released, release, reference, frames, Path(tmp))
        reference.eval()
        rows = _layer_rows(_reference_layers(reference, clip), _our_layers(ours, clip), "")
        rows += _results_rows(results, _our_results(ours, clip, Path(tmp)))
        rows += _padded_rows(released, release, ours, reference, seed)
        reference.double(), ours.double()
        try:  # the same in float64: what float32 rounding is, and what is not
            rows += _layer_rows(_reference_layers(reference, clip.double()), _our_layers(ours, clip.double()),
                                " (float64)")
        finally:
            reference.float(), ours.float()
    rows[-1] = (*rows[-1][:2], rows[-1][2] + "; the released dynamic_mask_with_coords casts its relative "
                "coordinates to float32 (.float()), so its masks carry float32 rounding here")
    return rows


def _compare_deformable_detr(root: Path, release: str, ours: Any, reference: nn.Module, seed: int) -> list[Row]:
    """What the stage-1 weights compute in our model: the backbone and the encoder (SeqFormer's decoder and heads
    differ from Deformable DETR's: their box-query parts and mask head start fresh)."""
    import torchvision.transforms as T

    frames = _frames(seed)
    normalize = T.Compose([T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    clip = torch.stack([normalize(frame) for frame in frames])
    captured: dict[str, Any] = {}
    hooks = [
        reference.backbone[0].body.register_forward_hook(lambda m, i, o: captured.__setitem__("ref_backbone", o)),
        reference.transformer.encoder.register_forward_hook(lambda m, i, o: captured.__setitem__("ref_memory", o)),
        ours.model.backbone.register_forward_hook(lambda m, i, o: captured.__setitem__("our_backbone", o)),
        ours.model.encoder.register_forward_hook(lambda m, i, o: captured.__setitem__("our_memory", o)),
    ]
    try:
        reference.eval()
        reference(list(clip))  # DeformableDETR.forward: a list of (3, H, W) images → its NestedTensor
        ours.model(clip[None])
    finally:
        for hook in hooks:
            hook.remove()
    rows: list[Row] = []
    ref_maps = list(captured["ref_backbone"].values())[-3:]  # IntermediateLayerGetter: layer2, layer3, layer4
    for ref, our_key in zip(ref_maps, ("f8", "f16", "f32")):
        our = captured["our_backbone"][our_key]
        rows.append((f"backbone {our_key}", (ref - our).abs().max().item(), f"{tuple(our.shape)}"))
    ref, our = captured["ref_memory"], captured["our_memory"]
    rows.append(("encoder memory", (ref - our).abs().max().item(),
                 f"{tuple(our.shape)}, frames as the batch, max |released| {ref.abs().max().item():.3g}"))
    return rows


def compare(root: Path, release: str, ours: Any, reference: nn.Module, seed: int) -> list[Row]:
    """SeqFormer: raw outputs of every decoder layer for one 3-frame clip (eval mode) and ``inference.py``'s results
    JSON against ours. Deformable DETR: the backbone features and the encoder memory (what the stage-1 weights
    set; the rest of SeqFormer starts fresh from them)."""
    if release.startswith("deformable_detr"):
        return _compare_deformable_detr(root, release, ours, reference, seed)
    return _compare_seqformer(root, release, ours, reference, seed)
