"""Sparse processing: per-video state reset, memory frames never sparse in mixed mode, strategies in training."""

from __future__ import annotations

import copy

import pytest
import torch

from vidseg_common.errors import ConfigError
from vidseg_spvos.inference import segment_video
from vidseg_spvos.processing import check_strategy, forward_clip


def _video(seed: int, frames: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    video = torch.randn(frames, 3, 32, 32, generator=gen)
    labels = torch.zeros(frames, 32, 32, dtype=torch.long)
    labels[0, 8:20, 8:20] = 1
    labels[0, 20:28, 4:12] = 2
    return video, labels


def test_memory_frames_are_never_sparse_in_mixed_inference(make_net) -> None:
    net = make_net(sparse_modules=["Q", "D"]).eval()
    video, labels = _video(0, frames=11)
    key_layers = [n for n in net.sparse_layers if n.startswith("key_encoder.")]
    per_frame = []
    original = net.encode_key

    def encode_key(frames):  # clear gates before each frame so last_gate tells whether this frame was sparse
        net.clear_gates()
        out = original(frames)
        per_frame.append(any(net.sparse_layers[n].last_gate is not None for n in key_layers))
        return out

    net.encode_key = encode_key
    segment_video(net, video, labels, {1: 0, 2: 0}, "mixed", mem_every=5, top_k=20)
    # memory frames 0, 5, 10 dense; all others sparse in the query encoder
    assert per_frame == [t % 5 != 0 for t in range(11)]
    stats = [net.sparse_layers[n].statistics() for n in key_layers]
    assert all(s["dense_pixels"] > 0 and s["sparse_pixels"] > 0 for s in stats)


def test_fully_sparse_inference_runs_memory_frames_sparse(make_net) -> None:
    net = make_net(sparse_modules=["Q", "D", "M"]).eval()
    video, labels = _video(1)
    segment_video(net, video, labels, {1: 0, 2: 0}, "fully", mem_every=5, top_k=20)
    value_layers = net.layers_of("value_encoder")
    # memory frames 0 and 5: frame 0 has no previous frame (dense), frame 5 runs the memory encoder sparsely
    assert all(layer.statistics()["sparse_pixels"] > 0 for layer in value_layers.values())


def test_state_is_reset_between_videos(make_net) -> None:
    net = make_net(sparse_modules=["Q", "D"]).eval()
    fresh = copy.deepcopy(net)
    video_a, labels_a = _video(2)
    video_b, labels_b = _video(3)
    segment_video(net, video_a, labels_a, {1: 0, 2: 0}, "mixed")
    after_a = segment_video(net, video_b, labels_b, {1: 0, 2: 0}, "mixed")
    alone = segment_video(fresh, video_b, labels_b, {1: 0, 2: 0}, "mixed")
    assert torch.equal(after_a, alone)
    # and the reset really matters: without it the first frame of B would be gated against A's last frame
    net.reset_state()
    net.encode_key(video_a[-1:])
    layer = next(iter(net.layers_of("key_encoder").values()))
    assert layer.prev_input is not None
    net.reset_state()
    assert layer.prev_input is None and layer.prev_output is None


@pytest.mark.parametrize(("strategy", "key_frames", "decoder_frames"),
                         [("mixed", 1, 1), ("semi-mixed", 2, 1), ("fully", 2, 1)])
def test_training_strategies(make_net, strategy: str, key_frames: int, decoder_frames: int) -> None:
    """3-frame clips: mixed → only frame 3 sparse; semi-mixed / fully → frames 2 and 3 sparse in the query encoder.

    The decoder first runs on frame 2 (no previous decoder input), so it is sparse on frame 3 only.
    """
    net = make_net(sparse_modules=["Q", "D"]).train()
    frames = torch.randn(2, 3, 3, 32, 32)
    labels = torch.zeros(2, 32, 32, dtype=torch.long)
    labels[:, 4:16, 4:16] = 1
    logits, gates = forward_clip(net, frames, labels, torch.tensor([1, 1]), strategy)
    assert len(logits) == 2 and logits[0].shape == (2, 2, 32, 32)
    assert {len(g) for n, g in gates.items() if n.startswith("key_encoder.")} == {key_frames}
    assert {len(g) for n, g in gates.items() if n.startswith("decoder.")} == {decoder_frames}


def test_mixed_with_memory_encoder_is_rejected() -> None:
    with pytest.raises(ConfigError, match="'M' has no effect"):
        check_strategy("mixed", ["Q", "D", "M"])
    with pytest.raises(ConfigError, match="strategy"):
        check_strategy("half", ["Q"])


def test_late_object_is_inserted_at_its_first_frame(make_net) -> None:
    net = make_net(sparse_modules=["Q", "D", "M"]).eval()
    video, labels = _video(4, frames=8)
    labels[3, 2:10, 20:30] = 3  # object 3 first annotated at frame 3 (YouTube-VOS style)
    pred = segment_video(net, video, labels, {1: 0, 2: 0, 3: 3}, "semi-mixed", mem_every=4)
    assert not (pred[:3] == 3).any()
    assert (pred[3][labels[3] == 3] == 3).all()  # its ground truth overrides the prediction there
    assert torch.equal(pred[0], labels[0])


@pytest.mark.parametrize("mode", ["batch", "running"])
def test_sparse_training_frame_batchnorm_mode(make_net, mode: str) -> None:
    """``sparse_frame_bn="running"``: the sparse (last) frame neither uses nor updates batch statistics."""
    net = make_net(sparse_modules=["Q", "D"]).train()
    bn = net.key_encoder.backbone.body.layer1[0].bn1
    calls: list[bool] = []
    bn.register_forward_hook(lambda m, i, o: calls.append(m.training))
    video, labels = _video(4, frames=3)
    forward_clip(net, video[None], labels[:1], torch.tensor([2]), "mixed", sparse_frame_bn=mode)
    assert calls == [True, True, mode == "batch"]  # one key-encoder call per frame; frame 2 is the sparse one
    assert bn.training  # restored
    dense = make_net(sparse_modules=["Q", "D"], gate="none").train()
    dense_bn = dense.key_encoder.backbone.body.layer1[0].bn1
    dense_calls: list[bool] = []
    dense_bn.register_forward_hook(lambda m, i, o: dense_calls.append(m.training))
    forward_clip(dense, video[None], labels[:1], torch.tensor([2]), "mixed", sparse_frame_bn=mode)
    assert dense_calls == [True, True, True]  # nothing is sparse in the non-sparse model
