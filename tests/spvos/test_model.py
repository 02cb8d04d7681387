"""STCN pieces against their definitions, and learning on a tiny batch."""

from __future__ import annotations

import math

import torch

from vidseg_spvos.memory import aggregate, l2_affinity, readout


def test_affinity_is_softmax_of_negative_squared_distance() -> None:
    # STCN: (2 k_M·k_Q − ‖k_M‖²)/√C differs from −‖k_M − k_Q‖²/√C by a per-query constant → same softmax
    mk, qk = torch.randn(2, 8, 3, 4, 5, dtype=torch.float64), torch.randn(2, 8, 4, 5, dtype=torch.float64)
    dist = torch.cdist(mk.flatten(2).transpose(1, 2), qk.flatten(2).transpose(1, 2)) ** 2  # (B, THW, HW)
    expected = torch.softmax(-dist / math.sqrt(8), dim=1)
    torch.testing.assert_close(l2_affinity(mk, qk), expected)


def test_top_k_keeps_k_memory_positions_per_query() -> None:
    mk, qk = torch.randn(1, 4, 2, 3, 3), torch.randn(1, 4, 3, 3)
    dense, top = l2_affinity(mk, qk), l2_affinity(mk, qk, top_k=5)
    assert ((top > 0).sum(1) == 5).all()
    torch.testing.assert_close(top.sum(1), torch.ones(1, 9))
    best = dense.argmax(1)
    assert torch.equal(top.argmax(1), best)


def test_readout_shapes_and_values() -> None:
    aff = torch.softmax(torch.randn(1, 2 * 6, 6), dim=1)
    values = torch.randn(1, 3, 5, 2, 2, 3)
    query = torch.randn(1, 5, 2, 3)
    out = readout(aff, values, query)
    assert out.shape == (1, 3, 10, 2, 3)
    expected = values[0, 1].reshape(5, 12) @ aff[0]
    torch.testing.assert_close(out[0, 1, :5].reshape(5, 6), expected)
    torch.testing.assert_close(out[0, 2, 5:], query[0])


def test_soft_aggregation() -> None:
    prob = torch.tensor([[[[0.9]], [[0.2]]]])  # two objects at one pixel
    full = torch.softmax(aggregate(prob), dim=1)[0, :, 0, 0]
    raw = torch.tensor([(1 - 0.9) * (1 - 0.2), 0.9, 0.2])  # p_bg = Π(1 − p_o), then odds-normalised
    odds = raw / (1 - raw)
    torch.testing.assert_close(full, odds / odds.sum())


def test_loss_decreases_on_a_tiny_batch(make_module) -> None:
    module = make_module(boot_start=1000, boot_end=2000)
    frames = torch.randn(2, 3, 3, 32, 32)
    masks = torch.zeros(2, 3, 32, 32, dtype=torch.long)
    for t in range(3):
        masks[:, t, 6 + t : 18 + t, 6:18] = 1
    masks[0, :, 20:28, 20:28] = 2
    batch = {"frames": frames, "masks": masks, "num_objects": torch.tensor([2, 1])}
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss = module.compute_loss(batch, step=0)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_render_overlay_colours_predicted_objects(make_module) -> None:
    module = make_module()
    frames = torch.zeros(1, 4, 3, 32, 48)  # padded frames; prediction is at the original 30×40
    pred = torch.zeros(4, 30, 40, dtype=torch.long)
    pred[-1, 5:10, 5:10] = 1
    image = module.render_overlay({"frames": frames}, {"pred": pred})
    assert image.shape == (30, 40, 3) and image.dtype.name == "uint8"
    assert (image[7, 7] != image[20, 20]).any()  # object pixel tinted, background left as the frame
