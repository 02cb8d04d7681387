"""SSTVOS forward shapes for every attention pattern, the encoder parameter count of Table 1, FRN + TLU,
config errors, and the loss decreasing on a tiny batch."""

from __future__ import annotations

import pytest
import torch

from vidseg_common.errors import ConfigError, DataError
from vidseg_sstvos.encoder import SSTEncoder
from vidseg_sstvos.norm import FilterResponseNorm


@pytest.mark.parametrize("attention", ["grid", "local", "strided", "local_strided"])
def test_forward_shapes_every_attention(make_sstvos, clip, attention: str) -> None:
    module = make_sstvos(attention=attention)
    frames, masks, num_objects = clip(batch=2, frames=5, size=32, objects=2)
    logits = module.net.forward_clip(frames, masks, num_objects)
    assert len(logits) == 3 and all(x.shape == (2, 3, 32, 32) for x in logits)
    assert all(torch.isfinite(x).all() for x in logits)
    embedding, f4 = module.net.embed(frames[:, 0])
    assert embedding.shape == (2, 16, 4, 4) and f4.shape == (2, 64, 8, 8)  # stride 8 grid, stride-4 map
    module.eval()
    pred = module(frames[:1], masks[:1])
    assert pred.shape == (1, 5, 32, 32) and pred.dtype == torch.int64
    assert torch.equal(pred[0, 0], masks[0, 0].masked_fill(masks[0, 0] == 255, 0))  # frame 0 = its ground truth
    assert int(pred.max()) <= 2


def test_encoder_affinity_shape_and_range(make_sstvos) -> None:
    encoder = SSTEncoder(dim=16, num_layers=3, num_heads=4, pattern="local", ffn_dim=16)
    x = torch.randn(2, 16, 4, 5, 6)
    labels = torch.randint(0, 3, (2, 4, 5, 6))
    encoded, affinity = encoder(x, labels, 3)
    assert encoded.shape == x.shape
    assert affinity.shape == (2, 3 * 4, 3, 5, 6)  # (B, L·M, O, h, w)
    assert float(affinity.detach().min()) >= 0 and float(affinity.detach().max()) <= 1  # max over softmax weights


def test_table1_encoder_parameters() -> None:
    """Table 1: the SST encoder (C = 128, 3 layers) has 0.3 M parameters."""
    encoder = SSTEncoder(dim=128, num_layers=3, num_heads=8, ffn_dim=128)
    params = sum(p.numel() for p in encoder.parameters())
    assert 0.25e6 < params < 0.35e6


def test_frn_tlu_matches_formula() -> None:
    norm = FilterResponseNorm(3, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.0, 2.0, -1.0]))
        norm.bias.copy_(torch.tensor([0.5, 0.0, 0.1]))
        norm.tau.copy_(torch.tensor([0.0, -0.2, 0.3]))
    x = torch.randn(2, 3, 4, 5, 6, dtype=torch.float64).float()
    out = norm(x)
    for c in range(3):
        nu2 = (x[:, c] ** 2).mean(dim=(-2, -1), keepdim=True)
        y = norm.weight[c] * x[:, c] / torch.sqrt(nu2 + 1e-6) + norm.bias[c]
        torch.testing.assert_close(out[:, c], torch.maximum(y, norm.tau[c]).detach())
    # per frame statistics: scaling one frame leaves the (pre-affine) output of the others unchanged
    x2 = x.clone()
    x2[:, :, 0] *= 10
    torch.testing.assert_close(norm(x2), out, rtol=1e-4, atol=1e-5)


def test_bad_options_raise_config_errors(make_sstvos) -> None:
    with pytest.raises(ConfigError, match="attention"):
        make_sstvos(attention="dense")
    with pytest.raises(ConfigError, match="divisible"):
        make_sstvos(hidden_dim=18, num_heads=4)
    with pytest.raises(ConfigError, match="history"):
        make_sstvos(history=0)
    with pytest.raises(ConfigError, match="lack"):
        make_sstvos(attention_stride=32)
    with pytest.raises(ConfigError, match="norm"):
        make_sstvos(norm="batchnorm")


def test_short_clip_and_batched_video_raise(make_sstvos, clip) -> None:
    module = make_sstvos()
    frames, masks, num_objects = clip(frames=2)
    with pytest.raises(DataError, match="reference"):
        module.net.forward_clip(frames, masks, num_objects)


def test_loss_decreases_on_a_tiny_batch(make_sstvos, clip) -> None:
    module = make_sstvos(sequential_start=1.0, boot_end=1000)
    frames, masks, num_objects = clip(batch=2, frames=4, size=32, objects=2, seed=1)
    # learnable structure: objects are bright squares on noise, identical in every frame
    masks = torch.zeros_like(masks)
    masks[:, :, 4:14, 4:14] = 1
    masks[:, :, 18:28, 16:30] = 2
    frames = frames * 0.2 + (masks[:, :, None] == 1) * 2.0 - (masks[:, :, None] == 2) * 2.0
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)
    losses = []
    for step in range(15):
        loss = module.loss(module.net.forward_clip(frames, masks, num_objects), masks, step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_render_overlay_colours_predicted_objects(make_sstvos, clip) -> None:
    module = make_sstvos()
    frames, _, _ = clip(batch=1, frames=3, size=32)
    pred = torch.zeros(3, 30, 28, dtype=torch.long)
    pred[-1, 5:10, 5:10] = 1
    image = module.render_overlay({"frames": frames}, {"pred": pred})
    assert image.shape == (30, 28, 3) and image.dtype.name == "uint8"
    plain = module.render_overlay({"frames": frames}, {"pred": torch.zeros_like(pred)})
    assert (image[5:10, 5:10] != plain[5:10, 5:10]).any() and (image[15:, 15:] == plain[15:, 15:]).all()
