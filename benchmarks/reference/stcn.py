"""STCN (hkchengrex/STCN, ``saves/stcn.pth``) → our SpVOS model (``gate: none`` = STCN, ``gate: triple`` = SpVOS).

The released model is ``model/eval_network.py::STCN`` (the class ``eval_davis.py`` loads ``stcn.pth`` into; its
state_dict is that of ``model/network.py::STCN(single_object=False)``, checked here). Its ImageNet downloads are
turned off (``torchvision.models.resnet50(pretrained=True)`` and ``mod_resnet``'s ``model_zoo.load_url``), and the
random weights are made non-degenerate by :func:`randomise` (seeded by the caller) so that each key matters. Our
model is built with ``pretrained: false`` (``davis17.yaml`` would download ImageNet weights the conversion replaces).

``compare`` runs the released ``inference_core.py::InferenceCore`` (DAVIS protocol: ``interact`` on frame 0, then
propagation with its ``MemoryBank`` top-k and ``mem_every``) on CPU — its ``.cuda()`` calls and ``device='cuda'``
buffer are redirected to the CPU for the call — against :func:`vidseg_spvos.inference.segment_video` with the same
``top_k`` / ``mem_every``, on a 5-frame, 2-object video at 64×96, in float32 and in float64. ``stcn_triple`` runs our
sparse layers dense (its gates are fresh; dense, it must compute STCN).

Conditioning: where two objects both have sigmoid ≈ 1 − 1e-5, STCN's float32 soft aggregation ``log(p / (1 − p))``
keeps a few significant bits of ``1 − p``; there STCN run with 1 and with 2 threads differs by up to 7e-3 in the soft
masks. ``PRED_GAIN`` keeps the random decoder out of that regime so that float32 differences measure the model.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reference import Release, Row

CONFIG = "experiments/spvos/davis17.yaml"
RELEASES = {
    "stcn": Release("spvos", "stcn", (CONFIG,), {"gate": "none", "pretrained": False},
                    "hkchengrex/STCN saves/stcn.pth (model/network.py STCN, DAVIS/YouTube-VOS main model)"),
    "stcn_triple": Release("spvos", "stcn", (CONFIG,), {"gate": "triple", "pretrained": False},
                           "hkchengrex/STCN saves/stcn.pth as the start of SpVOS (triple gates fresh)"),
}
RELEASED_MODULES = ("model", "util", "dataset", "inference_core", "inference_memory_bank")
"""Top-level names of the checkout's modules (``model``, ``util`` clash with other releases' packages)."""
SIZE = (64, 96)
FRAMES = 5
OBJECTS = 2
TOP_K = 20
MEM_EVERY = 2
GAIN = 0.5
"""Scale of the He-initialised convolutions outside the ResNets (see :func:`randomise`)."""
PRED_GAIN = 4.0
"""Further scale of the decoder's last convolution: mask logits of a few units (sigmoid in ≈ 0.05–0.9: not ≈ 0.5,
not saturated where float32 aggregation is ill-conditioned, see the module docstring)."""


@contextlib.contextmanager
def released(root: Path) -> Iterator[dict[str, Any]]:
    """Import the checkout's modules (downloads disabled) for the duration of the block; ``sys.modules`` restored."""
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in RELEASED_MODULES}
    for key in saved:
        del sys.modules[key]
    sys.path.insert(0, str(root))
    try:
        import torchvision
        from model import mod_resnet, modules  # the checkout's packages

        modules.models = types.SimpleNamespace(resnet50=lambda pretrained=False: torchvision.models.resnet50(weights=None))
        mod_resnet.load_weights_sequential = lambda target, source_state, extra_chan=1: None
        mod_resnet.model_zoo = types.SimpleNamespace(load_url=lambda url: {})
        import inference_core
        from model import eval_network, network

        yield {"eval_network": eval_network, "network": network, "inference_core": inference_core}
    finally:
        sys.path.remove(str(root))
        for key in [k for k in sys.modules if k.split(".")[0] in RELEASED_MODULES]:
            del sys.modules[key]
        sys.modules.update(saved)


def randomise(model: nn.Module) -> None:
    """A random STCN whose every tensor matters and whose outputs are not degenerate.

    The released init (torchvision / ``mod_resnet``: zero conv biases, identity BatchNorm; PyTorch's default for the
    rest) gives near-constant features and sigmoid outputs ≈ 0.5 on random frames. So: the convolutions outside the
    ResNets (fuser, ``key_comp``, decoder) are re-drawn with He init × ``GAIN`` and every bias at random; BatchNorm
    statistics are estimated on a seeded random video (cumulative average), then every BatchNorm affine and statistic
    is perturbed at random (the last BatchNorm of each residual block small, as in trained ResNets, so features stay
    at unit scale); the decoder's ``pred`` is scaled by ``PRED_GAIN``; ``key_proj`` keeps its orthogonal init, scaled to unit-scale keys (STCN's top-k softmax takes
    ``exp`` without subtracting the maximum). So keys, affinities and masks vary across positions and frames, and a
    mis-mapped bias or BatchNorm buffer shows in the outputs.
    """
    resnets = ("key_encoder.", "key_proj.", "value_encoder.conv1", "value_encoder.layer")
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.Conv2d) and not name.startswith(resnets):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                module.weight.mul_(GAIN)
            if isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
                module.bias.uniform_(-0.1, 0.1)
        norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        last = [block.bn3 if hasattr(block, "bn3") else block.bn2 for block in model.modules() if hasattr(block, "bn2")]
        for bn in norms:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        frames, labels = video(2**31 - 1)
        masks = torch.stack([(labels[0] == o).float() for o in range(1, OBJECTS + 1)])[:, None]
        for t in range(FRAMES):
            f16 = model.encode_key(frames[t : t + 1])[2]
            model.encode_value(frames[t : t + 1], f16, masks)
        for bn in norms:
            bn.momentum = 0.1
            bn.eval()
            bn.weight.uniform_(0.1, 0.3) if any(bn is b for b in last) else bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
            bn.running_mean.add_(torch.empty_like(bn.running_mean).uniform_(-0.1, 0.1) * bn.running_var.sqrt())
            bn.running_var.mul_(torch.empty_like(bn.running_var).uniform_(0.8, 1.25))
        model.decoder.pred.weight.mul_(PRED_GAIN)
        keys = model.encode_key(frames)[0]
        model.key_proj.key_proj.weight.div_(keys.std())  # keys ~unit scale: affinities peaked, exp() finite


def build_reference(root: Path, release: str) -> nn.Module:
    """``eval_network.STCN()`` from the checkout at ``root``, randomly initialised (see :func:`randomise`)."""
    with released(root) as code:
        model = code["eval_network"].STCN()
        train_keys = {k: tuple(v.shape) for k, v in code["network"].STCN(single_object=False).state_dict().items()}
    if train_keys != {k: tuple(v.shape) for k, v in model.state_dict().items()}:
        raise RuntimeError("STCN's network.py and eval_network.py state_dicts differ")
    randomise(model)
    return model.eval()


class _CPUTorch:
    """``torch`` for ``inference_core``: its ``device='cuda'`` buffer is made on the CPU."""

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    @staticmethod
    def zeros(*args: Any, device: Any = None, **kwargs: Any) -> torch.Tensor:
        return torch.zeros(*args, **kwargs)


@contextlib.contextmanager
def on_cpu(code: dict[str, Any]) -> Iterator[None]:
    """Run the released inference on the CPU: ``Tensor.cuda`` is the identity and ``inference_core.torch`` a proxy."""
    cuda, module = torch.Tensor.cuda, code["inference_core"]
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    module.torch = _CPUTorch()
    try:
        yield
    finally:
        torch.Tensor.cuda = cuda
        module.torch = torch


def video(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``frames (T, 3, H, W)``: a smooth random image (unit scale, as normalised frames) moving by 3 px per frame plus
    noise; ``labels (T, H, W)``: objects 1 and 2 (two disjoint rectangles) annotated in frame 0 only."""
    gen = torch.Generator().manual_seed(seed)
    h, w = SIZE
    coarse = torch.randn(1, 3, h // 8, w // 8 + 2, generator=gen)
    base = torch.nn.functional.interpolate(coarse, size=(h, w + 16), mode="bilinear", align_corners=False)[0]
    frames = torch.stack([base[:, :, 3 * t : 3 * t + w] for t in range(FRAMES)])
    frames = frames + 0.2 * torch.randn(FRAMES, 3, h, w, generator=gen)
    labels = torch.zeros(FRAMES, h, w, dtype=torch.long)
    labels[0, 8:40, 10:40] = 1
    labels[0, 20:56, 52:88] = 2
    return frames, labels


def _max(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    return max(float((a.double() - b.double()).abs().max()) for a, b in pairs)


def _scale(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> str:
    return f"|ref| ≤ {max(float(a.abs().max()) for a, _ in pairs):.3g}"


def run_released(root: Path, reference: nn.Module, frames: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """``InferenceCore`` (DAVIS protocol) on the video; the network's per-frame outputs recorded."""
    record: dict[str, list] = {"key": [], "value": [], "readout": [], "sigmoid": []}
    with released(root) as code, on_cpu(code):
        bank_class = code["inference_core"].MemoryBank

        class RecordingBank(bank_class):  # type: ignore[misc, valid-type]
            def match_memory(self, qk: torch.Tensor) -> torch.Tensor:
                out = super().match_memory(qk)
                record["readout"].append(out.clone())
                return out

        net = reference
        encode_key, encode_value, segment = net.encode_key, net.encode_value, net.segment_with_query
        net.encode_key = lambda frame: record["key"].append(encode_key(frame)) or record["key"][-1]
        net.encode_value = lambda *a: record["value"].append(encode_value(*a)) or record["value"][-1]
        net.segment_with_query = lambda *a: record["sigmoid"].append(segment(*a)) or record["sigmoid"][-1]
        code["inference_core"].MemoryBank = RecordingBank
        try:
            one_hot = torch.stack([(labels[0] == o).float() for o in range(1, OBJECTS + 1)])[:, None]
            core = code["inference_core"].InferenceCore(net, frames[None], OBJECTS, top_k=TOP_K, mem_every=MEM_EVERY)
            core.interact(one_hot, 0, FRAMES)
        finally:
            del net.encode_key, net.encode_value, net.segment_with_query
            code["inference_core"].MemoryBank = bank_class
    record["prob"] = core.prob[:, :, 0]  # (K+1, T, H, W)
    return record


def run_ours(net: nn.Module, frames: torch.Tensor, labels: torch.Tensor, force_dense: bool) -> dict[str, Any]:
    """:func:`segment_video` on the video; the network's per-frame outputs recorded."""
    from vidseg_spvos.inference import segment_video

    record: dict[str, list] = {"key": [], "value": [], "readout": [], "sigmoid": [], "prob": []}
    hooks = [
        net.key_encoder.register_forward_hook(lambda m, i, o: record["key"].append(dict(o))),
        net.value_encoder.register_forward_hook(lambda m, i, o: record["value"].append(o)),
        net.decoder.register_forward_hook(lambda m, i, o: record["sigmoid"].append(torch.sigmoid(o))),
    ]
    read, decode = net.read_memory, net.decode

    def read_memory(*args: Any, **kwargs: Any) -> torch.Tensor:
        out = read(*args, **kwargs)
        record["readout"].append(out[0, :, : out.shape[2] // 2])
        return out

    def decode_(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        logits, prob = decode(*args, **kwargs)
        record["prob"].append(torch.softmax(logits, dim=1)[0])
        return logits, prob

    net.read_memory, net.decode = read_memory, decode_
    try:
        with net.dense(force_dense):
            ids = segment_video(net, frames, labels, {o: 0 for o in range(1, OBJECTS + 1)}, "mixed", MEM_EVERY, TOP_K)
    finally:
        del net.read_memory, net.decode
        for hook in hooks:
            hook.remove()
    record["ids"] = ids
    return record


def compare(root: Path, release: str, ours: Any, reference: nn.Module, seed: int) -> list[Row]:
    """Both on a 5-frame, 2-object 64×96 video (top-k 20, memory every 2 frames: memory 0, 2; reads of 24 and 48
    positions), every intermediate the released ``InferenceCore`` computes, frame by frame; in float32, then again
    with both networks in float64 (``InferenceCore`` keeps its ``prob`` buffer in float32)."""
    frames, labels = video(seed)
    rows = _rows(run_released(root, reference.eval(), frames, labels),
                 run_ours(ours.net.eval(), frames, labels, force_dense=release != "stcn"), release, "")
    double = copy.deepcopy(reference).double().eval(), copy.deepcopy(ours.net).double().eval()
    frames = frames.double()
    return rows + _rows(run_released(root, double[0], frames, labels),
                        run_ours(double[1], frames, labels, force_dense=release != "stcn"), release, "float64 ")


def _rows(ref: dict[str, Any], got: dict[str, Any], release: str, prefix: str) -> list[Row]:
    if len(ref["key"]) != len(got["key"]) or len(ref["readout"]) != len(got["readout"]):
        raise RuntimeError(f"call counts differ: encode_key {len(ref['key'])} vs {len(got['key'])}, "
                           f"reads {len(ref['readout'])} vs {len(got['readout'])}")
    dense = "" if release == "stcn" else " (sparse layers run dense: the triple gates are fresh)"
    rows: list[Row] = []
    for i, name in enumerate(("k16", "v16", "f16", "f8", "f4")):  # STCN encode_key: k16, f16_thin, f16, f8, f4
        pairs = [(r[i], g[name]) for r, g in zip(ref["key"], got["key"])]
        rows.append((f"{prefix}key encoder {name}", _max(pairs), f"{len(pairs)} frames, {_scale(pairs)}{dense}"))
    pairs = [(r[:, :, 0], g) for r, g in zip(ref["value"], got["value"])]  # STCN (K, C_v, 1, h, w)
    rows.append((f"{prefix}memory values", _max(pairs), f"{len(pairs)} memory frames, {_scale(pairs)}"))
    pairs = list(zip(ref["readout"], got["readout"]))
    rows.append((f"{prefix}memory readout", _max(pairs), f"frames 1..{FRAMES - 1}, top-k {TOP_K}, {_scale(pairs)}"))
    pairs = [(r[:, 0], g[:, 0]) for r, g in zip(ref["sigmoid"], got["sigmoid"])]
    rows.append((f"{prefix}decoder sigmoid (per object)", _max(pairs), f"frames 1..{FRAMES - 1}"))
    pairs = [(ref["prob"][:, t], p.float()) for t, p in enumerate(got["prob"], start=1)]
    rows.append((f"{prefix}soft masks prob (K+1)", _max(pairs), f"aggregated, frames 1..{FRAMES - 1} (0: annotation)"))
    ids_ref = ref["prob"].argmax(0)
    wrong = int((ids_ref != got["ids"]).sum())
    rows.append((f"{prefix}argmax ids", float(wrong), f"pixels differing of {ids_ref.numel()} (must be 0)"))
    return rows
