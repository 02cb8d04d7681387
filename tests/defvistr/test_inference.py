"""Whole-video inference: clip windows, slot stitching across windows, VisTR's score / category / empty rules."""

from __future__ import annotations

import pytest
import torch

from vidseg_defvistr.inference import clip_windows, infer_video, postprocess


def test_clip_windows() -> None:
    assert clip_windows(3, 5) == [[0, 1, 2, 0, 1]]  # short video: cyclic repetition (VisTR)
    assert clip_windows(5, 5) == [[0, 1, 2, 3, 4]]
    assert clip_windows(8, 3) == [[0, 1, 2], [2, 3, 4], [4, 5, 6], [5, 6, 7]]  # one-frame overlap, last at the end
    covered = {t for w in clip_windows(23, 4) for t in w}
    assert covered == set(range(23))


def test_stitching_follows_tracks_when_windows_permute_slots() -> None:
    """A fake model whose slot order flips from window to window: stitching must restore consistent tracks."""
    length, clip_len, n, k = 7, 3, 2, 3
    h = w = 8
    track_mask = torch.full((2, h, w), -10.0)
    track_mask[0, :, : w // 2] = 10.0  # track 0: left half, class 1
    track_mask[1, :, w // 2:] = 10.0  # track 1: right half, class 2
    calls = []

    def fake_forward(clip: torch.Tensor) -> dict:
        start = int(clip[0, 0, 0, 0, 0])  # frames carry their index as pixel value
        calls.append(start)
        perm = [1, 0] if len(calls) % 2 == 0 else [0, 1]
        logits = torch.full((clip_len, n, k + 1), -5.0)
        masks = torch.empty(clip_len, n, h, w)
        for slot, track in enumerate(perm):
            logits[:, slot, track + 1] = 5.0
            masks[:, slot] = track_mask[track]
        return {"pred_logits": logits.reshape(1, clip_len * n, k + 1), "pred_masks": masks.reshape(1, clip_len * n, h, w)}

    frames = torch.arange(length, dtype=torch.float32)[:, None, None, None].expand(length, 3, 4 * h, 4 * w)
    probs, masks = infer_video(fake_forward, frames, clip_len, n)
    assert probs.shape == (length, n, k + 1) and masks.shape == (length, n, h, w)
    assert len(calls) == len(clip_windows(length, clip_len)) >= 3
    classes = probs.argmax(-1)  # (L, N)
    assert (classes == classes[0]).all()  # every slot keeps one class over the whole video
    assert sorted(classes[0].tolist()) == [1, 2]
    for s in range(n):
        torch.testing.assert_close(masks[:, s], masks[0, s].expand(length, h, w))


def test_postprocess_score_category_and_empty_slots() -> None:
    """Slot 0: frames vote classes (1, 2, 2) → category 2, score = mean of max probs; slot 1: empty mask → dropped."""
    probs = torch.tensor([
        [[0.1, 0.6, 0.2, 0.1], [0.1, 0.1, 0.1, 0.7]],
        [[0.1, 0.2, 0.5, 0.2], [0.1, 0.1, 0.1, 0.7]],
        [[0.1, 0.1, 0.8, 0.0], [0.1, 0.1, 0.1, 0.7]],
    ])  # (L=3, N=2, K+1=4), last = no-object
    logits = torch.full((3, 2, 2, 2), -10.0)
    logits[:, 0, 0, 0] = 10.0
    out = postprocess(probs, logits, (4, 4))
    assert out.masks.shape == (1, 3, 4, 4) and out.valid.tolist() == [[True, True, True]]
    assert out.labels.tolist() == [2]
    assert abs(out.scores.item() - (0.6 + 0.5 + 0.8) / 3) < 1e-6
    # a frame whose max class probability is < 0.001 loses its segmentation
    probs2 = probs.clone()
    probs2[1, 0, :3] = 0.0005
    low = postprocess(probs2, logits, (4, 4))
    assert not low.masks[0, 1].any() and low.valid.tolist() == [[True, False, True]]
    # a slot whose only foreground lies in such frames is kept with no segmentation left (VisTR's inference.py tests
    # `pred_masks[:, m].max() == 0` before the 0.001 rule)
    probs3 = probs.clone()
    probs3[:, 0, :3] = 0.0005
    faint = postprocess(probs3, logits, (4, 4))
    assert len(faint) == 1 and not faint.masks.any() and faint.valid.tolist() == [[False, False, False]]
    assert abs(faint.scores.item() - 0.0005) < 1e-7
    # padding cropped (content 2×4 of the 4×4 input), then resized to the original 4×8
    padded = postprocess(probs, logits, (4, 4), resized_size=(2, 4), original_size=(4, 8))
    assert padded.masks.shape == (1, 3, 4, 8) and bool(padded.masks[0, 0, :, :3].all()) and not padded.masks[0, 0, :, 5:].any()


def test_postprocess_unpadded_input_upsamples_straight_to_the_original_size() -> None:
    """VisTR's inference.py: ``F.interpolate(stride-4 logits, original size, bilinear).sigmoid() > 0.5``, one step
    (two bilinear steps through the 12×16 input size give other masks)."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 3, 4, generator=gen)  # (L, N, h, w): stride 4 of a 12×16 input
    probs = torch.full((2, 3, 5), 0.2)
    out = postprocess(probs, logits, (12, 16), resized_size=(12, 16), original_size=(17, 23))
    expected = torch.nn.functional.interpolate(logits.transpose(0, 1), size=(17, 23), mode="bilinear").sigmoid() > 0.5
    keep = expected.flatten(1).any(1)
    assert torch.equal(out.masks, expected[keep])


def test_perfect_outputs_score_ap_one() -> None:
    """Outputs built from the ground truth (slots permuted per window, one instance absent on two frames) go
    through stitching, post-processing and VideoAP: a correct pipeline scores AP = AR10 = 1."""
    from vidseg_common.metrics.vis import VideoAP

    length, clip_len, n, k, h, w = 5, 2, 3, 6, 16, 24
    gt = torch.zeros(2, length, h, w, dtype=torch.bool)
    for t in range(length):
        gt[0, t, 4:12, 4 * t: 4 * t + 8] = True
        if t not in (1, 2):
            gt[1, t, 8:16, 12:20] = True
    labels = torch.tensor([3, 5])
    calls = []

    def fake_forward(clip: torch.Tensor) -> dict:
        idx = [int(v) for v in clip[0, :, 0, 0, 0]]
        calls.append(idx)
        perm = [2, 0, 1] if len(calls) % 2 else [1, 2, 0]  # slot → instance (2 = nothing)
        logits = torch.full((clip_len, n, k + 1), -8.0)
        masks = torch.full((clip_len, n, h // 4, w // 4), -10.0)
        for slot, inst in enumerate(perm):
            if inst == 2:
                logits[:, slot, k] = 8.0
                continue
            logits[:, slot, labels[inst]] = 8.0
            for j, t in enumerate(idx):
                masks[j, slot] = torch.where(gt[inst, t, ::4, ::4], 10.0, -10.0)
        return {"pred_logits": logits.reshape(1, -1, k + 1), "pred_masks": masks.reshape(1, -1, h // 4, w // 4)}

    frames = torch.arange(length, dtype=torch.float32)[:, None, None, None].expand(length, 3, h, w)
    probs, mask_logits = infer_video(fake_forward, frames, clip_len, n)
    preds = postprocess(probs, mask_logits, (h, w))
    assert sorted(preds.labels.tolist()) == [3, 5]
    metric = VideoAP()
    metric.update({"masks": preds.masks, "scores": preds.scores, "labels": preds.labels}, {"masks": gt, "labels": labels, "valid": gt.flatten(2).any(2)}, video_id=1)
    stats = metric.compute()
    assert stats["AP"].item() == pytest.approx(1.0) and stats["AR10"].item() == pytest.approx(1.0)


def test_predict_writes_a_valid_results_json(tmp_path, tiny_config: dict) -> None:
    """``trainer.predict`` on 2 synthetic videos of 64×80 (padded to 64×96): a model forced to say "class 1, full
    mask" in every slot must give N results per video, every frame's mask covering the whole frame at the
    original size, read back by the strict YouTube-VIS results loader against the ground truth."""
    import lightning as L

    from vidseg_common.data.datamodules.vis import VISDataModule
    from vidseg_common.metrics.ytvis_json import load_ground_truth, load_results
    from vidseg_defvistr.module import DefVisTRModule

    dm = VISDataModule(root="synthetic", protocol="vistr", num_frames=2, short_side=None, max_size=None,
                       eval_short_side=None, num_workers=0, cache_dir=str(tmp_path / "cache"),
                       synthetic={"num_videos": 0, "num_val_videos": 2, "num_frames": 15, "height": 64, "width": 80})
    results = tmp_path / "out" / "results.json"
    module = DefVisTRModule(num_classes=17, num_frames=2, num_instances=2, output_dir=str(results.parent), **tiny_config)
    with torch.no_grad():
        module.model.class_embed.weight.zero_()
        module.model.class_embed.bias.fill_(-10.0)
        module.model.class_embed.bias[1] = 10.0
        final = module.model.insmask_head.layers[-1]
        final.weight.zero_()
        final.bias.fill_(10.0)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
                        default_root_dir=str(tmp_path))
    trainer.predict(module, datamodule=dm)
    videos, categories = load_ground_truth(next((tmp_path / "cache").rglob("valid.json")))
    loaded = load_results(results, videos, categories)
    assert len(videos) == 2
    for video in loaded.values():
        assert video.categories == [1, 1]
        assert video.scores == pytest.approx([1.0, 1.0], abs=1e-6)
        for areas in video.areas:
            assert areas == [64 * 80] * video.length
