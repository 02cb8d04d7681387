"""How much a trained STT model's temporal context contributes: val mIoU with vs without previous frames.

Same weights, two inputs per annotated val frame: the clip (T previous frames + the frame) and the frame alone
(with no key frame the STT block passes the query through, i.e. the model's own per-frame path). Reported on
all annotated frames and on those inside a corruption burst (synthetic sets), plus the mean relative size of
the STT update ``|out − q| / |q|`` on the encoder features.

    python experiments/stt/analysis/context_ablation.py outputs/stt/r3_stt/checkpoints/last.ckpt \\
        --config experiments/stt/synthetic.yaml --cache-dir outputs/stt/cache

``--quick`` (``make bench``) runs the same measurement on an untrained model of the config and 2 small val
videos: a pipeline check, its numbers mean nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml

from vidseg_common.data.datamodules.vss import VSSDataModule
from vidseg_common.metrics.vss import SegmentationIoU
from vidseg_stt.module import STTModule
from vidseg_stt.video_eval import synthetic_corruptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", help="a trained STT checkpoint (not needed with --quick)")
    parser.add_argument("--config", default="experiments/stt/synthetic.yaml")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--quick", action="store_true", help="untrained model, 2 small val videos (pipeline check)")
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    data = config["data"]["init_args"]
    data.update(cache_dir=args.cache_dir, num_workers=0)
    if args.checkpoint:
        module = STTModule.from_checkpoint(args.checkpoint)
    elif args.quick:
        torch.manual_seed(0)
        module = STTModule(**{**config["model"], "pretrained": False, "stt_zero_init": False})
        data["synthetic"] = {**data.get("synthetic", {}), "num_videos": 2, "num_val_videos": 2}
    else:
        parser.error("a checkpoint is required (or --quick)")
    module.eval()
    if module.stt is None:
        raise SystemExit("the model has no STT block (use_stt: false)")
    dm = VSSDataModule(**data)
    dm.setup("validate")
    dataset = dm.datasets["val"]
    flags = synthetic_corruptions(dm.resolved_root(), dataset.reader.split)
    scores = {key: SegmentationIoU(module.num_classes) for key in ("all/context", "all/alone", "corrupted/context", "corrupted/alone")}
    ratios = []
    with torch.no_grad():
        for i in range(len(dataset)):
            sample = dataset[i]
            frames, label = sample["frames"][None], sample["label"][None]
            with_context, alone = module(frames).argmax(1), module(frames[:, -1:]).argmax(1)
            groups = ["all"] + (["corrupted"] if 0 in flags.get(sample["meta"]["sample"], ()) else [])
            for group in groups:
                scores[f"{group}/context"].update(with_context, label)
                scores[f"{group}/alone"].update(alone, label)
            feats = module.backbone(frames.flatten(0, 1))
            key, value = module.stt.memory(feats[:-1])
            out = module.stt(feats[-1:], key[None], value[None])
            ratios.append(float((out - feats[-1:]).norm() / feats[-1:].norm()))
    print(f"{'frames':<12}{'with context':>14}{'frame alone':>14}")
    for group in ("all", "corrupted"):
        print(f"{group:<12}{float(scores[f'{group}/context'].compute()['mIoU']):>14.4f}"
              f"{float(scores[f'{group}/alone'].compute()['mIoU']):>14.4f}")
    print(f"relative STT update |out - q| / |q|: {sum(ratios) / len(ratios):.3f} over {len(ratios)} frames")


if __name__ == "__main__":
    main()
