"""Per-component diagnosis of a trained Deformable VisTR / VisTR checkpoint on the held-out videos.

Which part limits video AP — the class head, the boxes (decoder queries), the masks, or the stitching of
T-frame windows? For every validation video this prints, on the first window (raw model outputs, frame 0):
each instance slot's class / probability and the IoU of its box with the best ground-truth box, and the
pairwise IoU of the slots' binary masks (a matrix of ones: every slot of a frame has the same mask, i.e. the
mask head ignores its query); then, after whole-video inference (stitching + VisTR post-processing), each
ground-truth sequence's best sequence mask IoU and the class of that prediction. The summary gives the video
AP and the mean of those per-component numbers.

Usage::

    python experiments/defvistr/analysis/diagnose.py <checkpoint.ckpt> [--config experiments/defvistr/synthetic.yaml]

``--quick`` (``make bench``) runs the same diagnosis on an untrained model of the config and 2 small val videos:
a pipeline check, its numbers mean nothing. Checkpoints are loaded with ``weights_only=True``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml
from torchvision.ops import box_convert, box_iou

from vidseg_common.data.datamodules.vis import VISDataModule
from vidseg_common.data.datasets import collate_clips
from vidseg_common.metrics.vis import VideoAP
from vidseg_defvistr.module import DefVisTRModule

REPO = Path(__file__).resolve().parents[3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, nargs="?", help="a trained checkpoint (not needed with --quick)")
    parser.add_argument("--config", type=Path, default=REPO / "experiments/defvistr/synthetic.yaml",
                        help="the experiment YAML whose data.init_args built the checkpoint's data")
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--cache-dir", default=None, help="synthetic data cache (default: the datamodule's)")
    parser.add_argument("--quick", action="store_true", help="untrained model, 2 small val videos (pipeline check)")
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    data = {**config["data"]["init_args"], "num_workers": 0, "cache_dir": args.cache_dir}
    if args.checkpoint:
        module = DefVisTRModule.from_checkpoint(args.checkpoint)
    elif args.quick:
        torch.manual_seed(0)
        module = DefVisTRModule(**{**config["model"], "pretrained": False})
        data["synthetic"] = {**data.get("synthetic", {}), "num_videos": 2, "num_val_videos": 2}
    else:
        parser.error("a checkpoint is required (or --quick)")
    module.eval()
    dm = VISDataModule(**data)
    dm.prepare_data()
    dm.setup("fit")
    model, t_len, n = module.model, module.model.num_frames, module.model.num_instances
    metric = VideoAP()
    box_ious, class_ok, slot_mask_iou, seq_ious = [], [], [], []
    dataset = dm.datasets["val"]
    for index in range(min(args.videos, len(dataset))):
        batch = collate_clips([dataset[index]])
        target = batch["targets"][0]
        with torch.no_grad():
            out = model(batch["frames"][:, :t_len])
            preds = module._infer(batch["frames"])
        metric.update(preds, target, video_id=int(batch["meta"][0]["video_id"]))
        probs = out["pred_logits"][0, :n].softmax(-1)[:, :-1]  # frame 0 slots, no-object dropped
        boxes = box_convert(out["pred_boxes"][0, :n], "cxcywh", "xyxy")
        valid = target["valid"][:, 0]
        gt_boxes = box_convert(target["boxes"][valid, 0], "cxcywh", "xyxy")
        iou = box_iou(boxes, gt_boxes) if len(gt_boxes) else torch.zeros(n, 0)
        masks = (out["pred_masks"][0, :n].sigmoid() > 0.5).flatten(1).float()
        inter = masks @ masks.T
        pair = inter / (masks.sum(1)[:, None] + masks.sum(1)[None] - inter).clamp(min=1)
        off_diag = pair[~torch.eye(n, dtype=torch.bool)]
        slot_mask_iou.append(float(off_diag.mean()))
        for g in range(iou.shape[1]):
            slot = int(iou[:, g].argmax())
            box_ious.append(float(iou[slot, g]))
            class_ok.append(int(probs[slot].argmax()) == int(target["labels"][valid][g]))
        gt, pm = target["masks"].flatten(1).float(), preds["masks"].flatten(1).float()
        seq = (gt @ pm.T) / (gt.sum(1)[:, None] + pm.sum(1)[None] - gt @ pm.T).clamp(min=1)
        best = seq.max(1) if pm.shape[0] else None
        seq_ious += [] if best is None else best.values.tolist()
        print(f"video {index}: gt {target['labels'].tolist()} | slots cls {probs.argmax(-1).tolist()} "
              f"p {[round(float(p), 2) for p in probs.max(-1).values]} best box IoU per gt "
              f"{[round(float(v), 2) for v in iou.max(0).values] if iou.numel() else []} | slot-slot mask IoU "
              f"{round(slot_mask_iou[-1], 2)} | sequences: labels {preds['labels'].tolist()} best IoU per gt "
              f"{[] if best is None else [round(v, 2) for v in best.values.tolist()]}")
    stats = metric.compute()

    def mean(values: list[float]) -> float:
        return sum(values) / max(len(values), 1)

    print(f"video AP {float(stats['AP']):.3f} AP50 {float(stats['AP50']):.3f} AP75 {float(stats['AP75']):.3f} "
          f"AR10 {float(stats['AR10']):.3f}")
    print(f"frame 0, best slot per gt: box IoU {mean(box_ious):.2f}, class right {mean(class_ok):.2f}; "
          f"mean slot-slot mask IoU {mean(slot_mask_iou):.2f} (1 = query-agnostic masks); "
          f"stitched sequence mask IoU per gt {mean(seq_ious):.2f}")


if __name__ == "__main__":
    main()
