"""Shapes of the SeqFormer network and properties of the query-decomposition decoder (docs/reference/vis.md §3.1–3.2)."""

from __future__ import annotations

import pytest
import torch

from vidseg_seqformer.decoder import QueryDecompositionLayer
from vidseg_seqformer.model import SeqFormer


@pytest.mark.parametrize("num_frames", [1, 5, 24])
def test_output_shapes(tiny_model: SeqFormer, num_frames: int) -> None:
    tiny_model.eval()
    frames = torch.rand(1, num_frames, 3, 64, 96)
    with torch.no_grad():
        out = tiny_model(frames)
    q, k, layers = 6, 5, 2
    assert len(out["pred_logits"]) == len(out["pred_boxes"]) == layers
    for logits, boxes, refs in zip(out["pred_logits"], out["pred_boxes"], out["references"]):
        assert logits.shape == (1, q, k)
        assert boxes.shape == (1, num_frames, q, 4)
        assert refs.shape[:3] == (1, num_frames, q)
        assert ((boxes > 0) & (boxes < 1)).all()
    assert out["references"][0].shape[-1] == 2 and out["references"][1].shape[-1] == 4
    assert out["mask_features"].shape == (1, num_frames, 8, 8, 12)
    masks = tiny_model.predict_masks(out, -1, torch.zeros(3, dtype=torch.long), torch.tensor([0, 2, 5]))
    assert masks.shape == (3, num_frames, 16, 24)


def test_mask_head_relative_coordinates_use_the_unpadded_size(tiny_model: SeqFormer) -> None:
    """With padding, the normalised reference centres are relative to each clip's content (Deformable DETR's valid
    ratios), so the mask head turns them into pixels with the content size, as the released code does with the
    targets' ``size`` (the image before padding); without padding that is the input size."""
    tiny_model.eval()
    frames = torch.rand(2, 2, 3, 64, 96)
    padding = torch.zeros(2, 64, 96, dtype=torch.bool)
    padding[1, 32:] = True
    padding[1, :, 64:] = True
    with torch.no_grad():
        out = tiny_model(frames, padding)
        plain = tiny_model(frames)
        batch, query = torch.tensor([0, 1, 1]), torch.tensor([4, 0, 3])
        masks = tiny_model.predict_masks(out, -1, batch, query)
        head = tiny_model.mask_head
        centres = out["references"][-1][batch, :, query, :2]
        embeddings = out["instance"][-1][batch, query]
        features = out["mask_features"][batch]
        expected = [head(embeddings[i : i + 1], centres[i : i + 1], features[i : i + 1], size)
                    for i, size in enumerate([(64, 96), (32, 64), (32, 64)])]
    assert out["content_size"].tolist() == [[64, 96], [32, 64]]
    assert plain["content_size"].tolist() == [[64, 96], [64, 96]]
    torch.testing.assert_close(masks, torch.cat(expected))


def test_batch_clips_are_independent(tiny_model: SeqFormer) -> None:
    """Clip 0's outputs do not depend on what else is in the batch (frames are encoded independently)."""
    tiny_model.eval()
    frames = torch.rand(2, 3, 3, 64, 64)
    with torch.no_grad():
        both = tiny_model(frames)
        alone = tiny_model(frames[:1])
    torch.testing.assert_close(both["pred_logits"][-1][:1], alone["pred_logits"][-1], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(both["pred_boxes"][-1][:1], alone["pred_boxes"][-1], atol=1e-5, rtol=1e-4)


def test_temporal_weights_sum_to_one_over_frames() -> None:
    torch.manual_seed(0)
    layer = QueryDecompositionLayer(d_model=32, d_ffn=64, n_levels=2, n_heads=4, n_points=2)
    weights = layer.temporal_weights(torch.randn(2, 7, 5, 32))
    assert weights.shape == (2, 7, 5, 1)
    torch.testing.assert_close(weights.sum(1), torch.ones(2, 5, 1))
    assert weights.std() > 0  # a learned softmax, not the uniform average
    layer.aggregation = "average"
    torch.testing.assert_close(layer.temporal_weights(torch.randn(1, 4, 3, 32)), torch.full((1, 4, 3, 1), 0.25))


def test_first_layer_box_queries_shared_across_identical_frames(tiny_model: SeqFormer) -> None:
    """Eq. 1: at layer 1 every frame uses the same query; identical frames give identical per-frame boxes."""
    tiny_model.eval()
    frame = torch.rand(1, 1, 3, 64, 64)
    with torch.no_grad():
        out = tiny_model(frame.expand(1, 4, 3, 64, 64))
    boxes = out["pred_boxes"][0][0]
    torch.testing.assert_close(boxes, boxes[:1].expand_as(boxes), atol=1e-5, rtol=1e-5)


def test_instance_and_box_queries_change_with_frames(tiny_model: SeqFormer) -> None:
    """Different frames give different per-frame boxes; the instance query (one per video) has no frame axis."""
    tiny_model.eval()
    with torch.no_grad():  # the box heads start at zero (Deformable DETR init): boxes = references until trained
        for head in tiny_model.decoder.bbox_embed:
            head.layers[-1].weight.normal_(0.0, 0.1)
    with torch.no_grad():
        out = tiny_model(torch.rand(1, 3, 3, 64, 64))
    boxes = out["pred_boxes"][-1][0]
    assert not torch.allclose(boxes[0], boxes[1])
    assert out["instance"][-1].shape == (1, 6, 32)


def test_without_decomposition_frames_share_the_sampling_reference(tiny_kwargs: dict) -> None:
    """Table 3 ablation: the shared instance query and one reference per query for all frames at every layer."""
    for decompose in (True, False):
        torch.manual_seed(0)
        model = SeqFormer(**{**tiny_kwargs, "dec_layers": 3}, decompose=decompose).eval()
        with torch.no_grad():
            for head in model.decoder.bbox_embed:
                head.layers[-1].weight.normal_(0.0, 0.1)
            out = model(torch.rand(1, 3, 3, 64, 64))
        refs = out["references"][2][0]  # third layer's input reference (T, Q, 4)
        shared = torch.allclose(refs, refs[:1].expand_as(refs))
        assert shared == (not decompose)
        assert not torch.allclose(out["pred_boxes"][-1][0, 0], out["pred_boxes"][-1][0, 1])  # boxes still per frame
