"""Causality of the object affinities (Eq. 4) and of inference: the current frame's affinities never read labels of
the current or later frames, and frame-by-frame inference never reads later frames.

The layer's affinities are also checked against the dense oracle of ``vidseg_common.ops`` (dense masked softmax over
the pattern's connectivity matrix, then the max over earlier-frame cells per object, written here with loops)."""

from __future__ import annotations

import pytest
import torch

from vidseg_common.ops.sparse_st_attn import pattern_params, sparse_st_attn_reference
from vidseg_common.ops.sparse_st_attn_patterns import connectivity_mask
from vidseg_sstvos.encoder import SparseSelfAttention


def _dense_affinity(layer: SparseSelfAttention, x: torch.Tensor, labels: torch.Tensor, num_objects: int) -> torch.Tensor:
    """Oracle: per head dense weights of the current (last) frame's cells, max over earlier cells of each object."""
    b, c, t, h, w = x.shape
    m = layer.num_heads
    q, k, v = (proj(x).reshape(b * m, c // m, t, h, w) for proj in (layer.query, layer.key, layer.value))
    params = pattern_params(layer.pattern, w, layer.kernel_size, layer.stride)
    _, weights = sparse_st_attn_reference(q, k, v, layer.pattern, params, layer.causal)  # (B·M, S, S)
    mask = connectivity_mask(layer.pattern, params, [t, h, w], layer.causal)
    out = torch.zeros(b, m, num_objects, h, w, dtype=x.dtype)
    flat = labels.reshape(b, -1)
    for n in range(b * m):
        for p in range(h * w):
            query_cell = (t - 1) * h * w + p
            for key_cell in range((t - 1) * h * w):  # earlier frames only
                o = int(flat[n // m, key_cell])
                if mask[query_cell, key_cell] and o != 255:
                    out[n // m, n % m, o, p // w, p % w] = max(out[n // m, n % m, o, p // w, p % w], weights[n, query_cell, key_cell])
    return out


@pytest.mark.parametrize("pattern", ["grid", "local"])
def test_affinity_matches_dense_oracle_and_ignores_current_labels(pattern: str) -> None:
    torch.manual_seed(1)
    layer = SparseSelfAttention(8, num_heads=2, pattern=pattern, kernel_size=3).double()
    x = torch.randn(2, 8, 3, 4, 5, dtype=torch.float64)
    labels = torch.randint(0, 3, (2, 3, 4, 5))
    labels[:, -1] = 255
    labels[0, 0, 0, 0] = 255
    _, affinity = layer(x, labels, 3)
    assert affinity.shape == (2, 2, 3, 4, 5)
    torch.testing.assert_close(affinity, _dense_affinity(layer, x, labels, 3))
    # labels of the current frame are never read
    perturbed = labels.clone()
    perturbed[:, -1] = torch.randint(0, 3, perturbed[:, -1].shape)
    torch.testing.assert_close(layer(x, perturbed, 3)[1], affinity)
    # ... while those of earlier frames are (the check can fail)
    earlier = labels.clone()
    earlier[:, 0] = (earlier[:, 0] + 1) % 3
    assert not torch.allclose(layer(x, earlier, 3)[1], affinity)


def test_training_clip_reads_only_earlier_labels(make_sstvos, clip) -> None:
    """Current frame i of a training clip: masks of current frames ≥ i and later frames do not change its logits."""
    module = make_sstvos(attention="local").eval()
    frames, masks, num_objects = clip(batch=1, frames=5, size=32, objects=2)
    with torch.no_grad():
        logits = module.net.forward_clip(frames, masks, num_objects)
        perturbed_masks = masks.clone()
        perturbed_masks[:, 2:] = torch.randint(0, 3, perturbed_masks[:, 2:].shape)
        perturbed_frames = frames.clone()
        perturbed_frames[:, 3:] = torch.randn_like(frames[:, 3:])
        again = module.net.forward_clip(perturbed_frames, perturbed_masks, num_objects)
    torch.testing.assert_close(again[0], logits[0])  # current frame 2 (index 0): its own and later masks unused
    assert not torch.allclose(again[1], logits[1])  # frame 3 itself changed


def test_video_inference_is_online(make_sstvos, clip) -> None:
    """Predictions up to frame t never depend on frames after t, nor on ground truth after frame 0."""
    module = make_sstvos(attention="grid").eval()
    frames, masks, _ = clip(batch=1, frames=6, size=32, objects=2, seed=3)
    pred = module(frames, masks)
    frames2, masks2 = frames.clone(), masks.clone()
    frames2[:, 4:] = torch.randn_like(frames2[:, 4:])
    masks2[:, 1:] = torch.randint(0, 3, masks2[:, 1:].shape)
    pred2 = module(frames2, masks2)
    assert torch.equal(pred2[:, :4], pred[:, :4])


def test_late_objects_are_inserted_at_their_first_annotation(make_sstvos, clip) -> None:
    """YouTube-VOS: an object annotated first at frame 3 is never predicted before it and its ground truth wins there."""
    module = make_sstvos().eval()
    frames, _, _ = clip(batch=1, frames=6, size=32, seed=4)
    masks = torch.zeros(1, 6, 32, 32, dtype=torch.long)
    masks[:, 0, 4:12, 4:12] = 1
    masks[:, 3, 20:28, 20:28] = 2  # only the new object is annotated at frame 3 (YouTube-VOS valid)
    annotated = [True, False, False, True, False, False]
    pred = module.net.infer_video(frames, masks, annotated, num_objects=2)[0]
    assert not (pred[:3] == 2).any()
    assert (pred[3, 20:28, 20:28] == 2).all()
    assert torch.equal(pred[0], masks[0, 0])
