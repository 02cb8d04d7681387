"""DeformableVisTR structure: VisTR's parameter count, output shapes for T=1 and T=36, frame-major queries."""

from __future__ import annotations

import pytest
import torch

from vidseg_common.engine.batchnorm import freeze_batchnorm
from vidseg_defvistr.model import DeformableVisTR
from vidseg_defvistr.transformer import VisTRTransformer


def test_dense_r50_matches_vistr_parameter_count() -> None:
    """docs/reference/vis.md §2.1: VisTR R50 (frozen BN, masks) has state_dict numel 57,222,369 and 57,116,129 parameters."""
    model = DeformableVisTR(attention="dense", pretrained=False)
    model.backbone = freeze_batchnorm(model.backbone)
    assert sum(v.numel() for v in model.state_dict().values()) == 57_222_369
    assert sum(p.numel() for p in model.parameters()) == 57_116_129


def test_deformable_replaces_encoder_self_and_decoder_cross_attention_only() -> None:
    from vidseg_common.ops.st_deform_attn_module import STDeformAttn

    tr = VisTRTransformer(d_model=48, n_heads=8, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=32,
                          attention="deformable", n_points=32, num_frames=2, num_instances=3)
    for layer in tr.encoder_layers:
        assert isinstance(layer.self_attn, STDeformAttn) and layer.self_attn.n_points == 32
        assert layer.self_attn.n_heads == 8
    for layer in tr.decoder_layers:
        assert isinstance(layer.self_attn, torch.nn.MultiheadAttention)
        assert isinstance(layer.cross_attn, STDeformAttn)


@pytest.mark.parametrize(("frames", "attention"), [(1, "deformable"), (36, "deformable"), (36, "dense")])
def test_forward_shapes(frames: int, attention: str, tiny_net_config: dict) -> None:
    torch.manual_seed(0)
    model = DeformableVisTR(num_classes=5, num_frames=frames, num_instances=2, attention=attention, **tiny_net_config)
    out = model(torch.rand(1, frames, 3, 32, 64))
    q = frames * 2
    assert out["pred_logits"].shape == (1, q, 6)
    assert out["pred_boxes"].shape == (1, q, 4)
    assert ((out["pred_boxes"] >= 0) & (out["pred_boxes"] <= 1)).all()
    assert out["pred_masks"].shape == (1, q, 8, 16)
    assert len(out["aux_outputs"]) == tiny_net_config["num_decoder_layers"] - 1
    with pytest.raises(ValueError, match="built for clips of"):
        model(torch.rand(1, frames + 1, 3, 32, 64))


def test_queries_are_frame_major(tiny_net_config: dict) -> None:
    """Changing decoder output q = t·N + i changes the masks of instance slot i only (all its frames)."""
    torch.manual_seed(0)
    t, n = 3, 2
    model = DeformableVisTR(num_classes=5, num_frames=t, num_instances=n, **tiny_net_config).eval()
    frames = torch.rand(1, t, 3, 64, 64)
    feats = model.backbone(frames.flatten(0, 1))
    src = model.input_proj(feats["f32"]).view(1, t, -1, 2, 2)
    pos = model.position(torch.zeros(1, t, 2, 2, dtype=torch.bool))
    hs, memory = model.transformer(src, pos, model.query_embed.weight)
    base = model._masks(hs[-1], memory, feats, 1, t)
    q = 1 * n + 1  # frame 1, slot 1
    changed = hs[-1].clone()
    changed[:, q] += 5.0
    diff = (model._masks(changed, memory, feats, 1, t) - base).abs().flatten(2).amax(-1)[0]  # (Q,)
    slot = torch.arange(t * n) % n
    assert (diff[slot != 1] == 0).all()
    assert (diff[slot == 1] > 0).any() and diff[q] > 0


def test_decoder_reference_time_starts_on_own_frame() -> None:
    """Our recorded choice: with the reference linear layer zeroed, query t·N+i points at (0.5, 0.5, (t+.5)/T)."""
    t, n = 4, 3
    tr = VisTRTransformer(d_model=48, n_heads=8, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=32,
                          attention="deformable", n_points=4, num_frames=t, num_instances=n)
    torch.nn.init.zeros_(tr.reference_points.weight)
    ref = (tr.reference_points(torch.randn(t * n, 48)) + tr.reference_prior).sigmoid()
    expected_t = ((torch.arange(t * n) // n).float() + 0.5) / t
    torch.testing.assert_close(ref[:, 2], expected_t)
    torch.testing.assert_close(ref[:, :2], torch.full((t * n, 2), 0.5))


def test_dilation_gives_stride16_tokens_and_same_outputs(tiny_net_config: dict) -> None:
    """DC5 (DETR/VisTR ``--dilation``): res5 dilated, the transformer sees an (H/16, W/16) map per frame (4× the
    tokens of the stride-32 model), the mask head still reads res4/res3/res2; output shapes and the parameter
    count are unchanged (dilation changes no weights)."""
    torch.manual_seed(0)
    t, n = 2, 2
    plain = DeformableVisTR(num_classes=5, num_frames=t, num_instances=n, **tiny_net_config)
    dc5 = DeformableVisTR(num_classes=5, num_frames=t, num_instances=n, dilation=True, **tiny_net_config)
    assert dc5.res5_key == "f16_res5" and plain.res5_key == "f32"
    assert sum(p.numel() for p in dc5.parameters()) == sum(p.numel() for p in plain.parameters())
    seen: list[tuple[int, ...]] = []
    dc5.input_proj.register_forward_hook(lambda mod, inp, out: seen.append(tuple(out.shape)))
    out = dc5(torch.rand(1, t, 3, 64, 96))
    assert seen == [(t, tiny_net_config["hidden_dim"], 4, 6)]
    assert out["pred_masks"].shape == (1, t * n, 16, 24)
    assert out["pred_logits"].shape == (1, t * n, 6)
