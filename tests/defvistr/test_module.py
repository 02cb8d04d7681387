"""DefVisTRModule recipe wiring: the paper's lr groups and frozen BN."""

from __future__ import annotations

import pytest
from torch import nn

from vidseg_common.tasks.instances import VideoInstances
from vidseg_defvistr.module import DefVisTRModule


def test_default_lr_groups_and_frozen_bn(tiny_config: dict) -> None:
    """Backbone 1e-5, base 1e-4, sampling offsets and reference points × 0.1 (paper), frozen stem/res2 and BN."""
    module = DefVisTRModule(num_classes=5, num_frames=2, num_instances=2, bn_mode="frozen", **tiny_config)
    module.configure_model()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in module.modules())
    groups = module.configure_optimizers()["optimizer"].param_groups
    lr_of = {}
    for group in groups:
        for param in group["params"]:
            lr_of[id(param)] = group["lr"]
    names = dict(module.named_parameters())
    checked = {"backbone": 0, "sampling_offsets": 0, "reference_points": 0, "base": 0}
    for name, param in names.items():
        if not param.requires_grad:
            assert id(param) not in lr_of
            assert ".layer1." in name or ".conv1." in name or ".bn1." in name
            continue
        if ".backbone." in name:
            key, expected = "backbone", 1e-5
        elif "sampling_offsets" in name:
            key, expected = "sampling_offsets", 1e-5
        elif "reference_points" in name:
            key, expected = "reference_points", 1e-5
        else:
            key, expected = "base", 1e-4
        assert lr_of[id(param)] == pytest.approx(expected), name
        checked[key] += 1
    assert all(count > 0 for count in checked.values()), checked


def test_benchmark_counts_every_op_and_checks_the_clip_length(tiny_config: dict) -> None:
    """``vidseg-defvistr benchmark``'s numbers: no op without a FLOP formula (STDeformAttn registers one, the
    mask head's DCN is a counted matmul), FLOPs above the DCN's own share, and a wrong T is refused."""
    from vidseg_common.engine.benchmark import benchmark_module
    from vidseg_common.errors import ConfigError

    module = DefVisTRModule(num_classes=5, num_frames=2, num_instances=2, **tiny_config)
    module.configure_model()
    result = benchmark_module(module, batch_size=1, num_frames=2, height=64, width=64, warmup=0, iters=1)
    assert result.uncounted_ops == []
    dcn = module.model.mask_head.dcn.weight
    dcn_flops = 2 * dcn.numel() * (2 * 2) * 16 * 16  # per output pixel of the T·N = 4 query-frames at stride 4
    assert result.flops > dcn_flops > 0
    assert result.params == sum(p.numel() for p in module.parameters())
    with pytest.raises(ConfigError, match="num_frames=2"):
        benchmark_module(module, batch_size=1, num_frames=5, height=64, width=64, warmup=0, iters=1)


def test_benchmark_flops_include_the_attention_matmuls(tiny_config: dict) -> None:
    """Dense VisTR: the benchmark's counter finds exactly ``2·2·Lq·Lk·C`` more FLOPs per attention call than a
    bare ``FlopCounterMode``, for which the CPU's fused SDPA kernel has no formula (encoder self, decoder self
    and cross attention)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from vidseg_common.engine.benchmark import count_flops

    t, n, c = 2, 3, tiny_config["hidden_dim"]
    module = DefVisTRModule(num_classes=5, num_frames=t, num_instances=n, attention="dense", **tiny_config).eval()
    inputs = module.example_inputs(1, t, 64, 96)
    with_attention, _ = count_flops(module.benchmark_forward, inputs)
    bare = FlopCounterMode(display=False)
    with torch.no_grad(), bare:
        module(*inputs)
    plain = bare.get_total_flops()
    s, q = t * 2 * 3, t * n  # tokens of the 2×3 stride-32 maps, queries
    enc, dec = tiny_config["num_encoder_layers"], tiny_config["num_decoder_layers"]
    attention = 4 * c * (enc * s * s + dec * (q * q + q * s))
    assert with_attention - plain == attention


def test_render_overlay_paints_the_best_sequences_on_the_first_frame(tiny_config: dict) -> None:
    import numpy as np
    import torch

    module = DefVisTRModule(**tiny_config, overlay_max_instances=1)
    frames = torch.zeros(1, 2, 3, 16, 20)
    masks = torch.zeros(2, 2, 16, 20, dtype=torch.bool)
    masks[0, 0, :4, :4] = True  # low score: not drawn with overlay_max_instances=1
    masks[1, 0, 8:, 10:] = True
    batch = {"frames": frames, "meta": [{"video_id": 0, "size": (16, 20)}]}
    preds = VideoInstances(masks=masks, scores=torch.tensor([0.2, 0.9]), labels=torch.tensor([0, 3]))
    image = module.render_overlay(batch, {"instances": preds})
    base = module.render_overlay(batch, {"instances": VideoInstances(masks=torch.zeros_like(masks), scores=preds.scores,
                                                                     labels=preds.labels)})
    assert image.shape == (16, 20, 3) and image.dtype == np.uint8
    changed = (image != base).any(-1)
    assert changed[12:, 14:].all()  # inside the best sequence's mask
    assert not changed[:4, :4].any()  # the lower-scoring one is left out
