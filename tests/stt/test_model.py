"""STT-PSP18 forward shapes, streaming = clip inference, and the loss decreasing on a tiny batch."""

from __future__ import annotations

import pytest
import torch

from vidseg_common.errors import DataError


def test_forward_shapes(make_stt) -> None:
    module = make_stt().eval()
    frames = torch.randn(2, 4, 3, 32, 48)
    feats_f8 = module.backbone(frames[:, -1])
    assert module.backbone.out_channels == 1024  # ResNet18 512 + PPM 4 × 128 (docs/reference/vss.md §1.4)
    assert feats_f8.shape == (2, 1024, 4, 6)  # output stride 8
    with torch.no_grad():
        assert module(frames).shape == (2, 5, 32, 48)
        assert module(frames[:, -1:]).shape == (2, 5, 32, 48)  # no previous frame: STT passes the query through
    baseline = make_stt(use_stt=False).eval()
    assert baseline.stt is None
    with torch.no_grad():
        assert baseline(frames).shape == (2, 5, 32, 48)


def test_too_many_frames_and_bad_shapes(make_stt) -> None:
    module = make_stt().eval()
    with pytest.raises(DataError, match="at most T=3"):
        module(torch.randn(1, 5, 3, 32, 32))
    with pytest.raises(DataError, match=r"\(B, T\+1, 3, H, W\)"):
        module(torch.randn(1, 3, 32, 32))


def test_streaming_equals_clip_inference(make_stt) -> None:
    """Each frame encoded once with its keys cached gives the clip forward's output on the same frames."""
    module = make_stt().eval()
    frames = torch.randn(1, 6, 3, 32, 32)
    cache: list = []
    with torch.no_grad():
        for t in range(frames.shape[1]):
            streamed = module.stream_step(frames[:, t], cache)
            clip = module(frames[:, max(0, t - 3): t + 1])  # the T = 3 previous frames the cache holds
            torch.testing.assert_close(streamed, clip, rtol=1e-4, atol=1e-4)
            assert len(cache) == min(t + 1, 3)
        # the temporal context matters: without previous frames the last prediction differs
        assert not torch.allclose(streamed, module(frames[:, -1:]), atol=1e-4)


def test_loss_decreases_on_a_tiny_batch(make_stt) -> None:
    module = make_stt(num_classes=3)
    frames = torch.randn(2, 4, 3, 32, 32)
    label = torch.zeros(2, 32, 32, dtype=torch.long)
    label[:, :, 16:] = 1
    label[:, :4] = 2
    label[:, -2:] = 255  # void pixels are ignored
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        loss = module.loss(module(frames), label)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    assert module.stt is not None and module.stt.q_proj.weight.grad is not None  # gradients reach the STT block


def test_zero_initialised_block_starts_as_the_per_frame_model(make_stt) -> None:
    """stt_zero_init: a fresh STT adds exactly zero, so the clip output equals the output without previous frames;
    the output projection still gets a gradient at once (the block can learn)."""
    module = make_stt(stt_zero_init=True)
    frames = torch.randn(1, 4, 3, 32, 32)
    module.eval()
    with torch.no_grad():
        torch.testing.assert_close(module(frames), module(frames[:, -1:]), rtol=0, atol=0)
    module.train()
    label = torch.randint(0, 5, (1, 32, 32))
    module.loss(module(frames), label).backward()
    assert module.stt is not None and module.stt.expand.weight.grad.abs().sum() > 0


def test_benchmark_inputs_stream_with_a_full_cache(make_stt) -> None:
    """``vidseg-stt benchmark`` streams frames against a cache pre-filled with T frames (steady-state fps)."""
    module = make_stt().eval()
    with torch.no_grad():
        frames, cache = module.example_inputs(1, 2, 32, 32)
        assert frames.shape == (1, 2, 3, 32, 32) and len(cache) == 3
        before = [key for key, _ in cache]
        logits = module.benchmark_forward(frames, cache)
        expected: list = list(cache)
        module.stream_step(frames[:, 0], expected)
        torch.testing.assert_close(logits, module.stream_step(frames[:, 1], expected))
    assert all(a is b for a, b in zip((key for key, _ in cache), before, strict=True))  # the same entries: the cache is reused unchanged between timed calls


def test_render_overlay_uses_the_official_class_colours(make_stt) -> None:
    import numpy as np

    from vidseg_common.viz import class_palette

    module = make_stt(num_classes=19)
    frames = torch.zeros(1, 2, 3, 8, 8)
    pred = torch.zeros(1, 8, 8, dtype=torch.long)
    pred[0, :, 4:] = 13  # car
    image = module.render_overlay({"frames": frames}, {"pred": pred})
    base = module.render_overlay({"frames": frames}, {"pred": torch.zeros_like(pred)})
    palette = class_palette("cityscapes").astype(np.int64)
    # same frame, only the class changes: the blend moves by half the palette difference
    expected = (palette[13] - palette[0]) / 2
    assert np.abs(image[:, 4:].astype(np.int64) - base[:, 4:] - expected).max() <= 1
    assert (image[:, :4] == base[:, :4]).all()
    other = make_stt(num_classes=5).render_overlay({"frames": frames}, {"pred": pred % 5})
    assert other.shape == (8, 8, 3) and other.dtype == np.uint8
