"""Two-process CPU (gloo) run of the metrics, launched by test_ddp.py as a script (not collected by pytest).

Usage: ``python ddp_worker.py <fixtures_root> <out.json> <rank> <port>`` (run once per rank). Scenarios per metric:
``uneven`` (rank 0 gets 3 videos, rank 1 gets 2 of which one repeats a rank-0 video, as a padded
DistributedSampler does) and ``empty`` (rank 1 sees nothing). Rank 0 writes the computed numbers.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from pathlib import Path

import torch
import torch.distributed as dist


def _davis_items(root: Path) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    from vidseg_common.metrics.davis_folder import davis_sequences, load_gt, load_prediction

    items = []
    for seq in davis_sequences(root / "gt"):
        gt, names = load_gt(root / "gt", seq)
        pred = load_prediction(root / "res", seq, names, gt.shape[1:], frozenset({0, len(names) - 1}))
        items.append((seq, torch.from_numpy(pred), torch.from_numpy(gt)))
    return items


def _vis_items(root: Path) -> list[tuple[object, object]]:
    from vidseg_common.metrics.ytvis_json import load_ground_truth, load_results

    videos, categories = load_ground_truth(root / "gt.json")
    dets = load_results(root / "results.json", videos, categories)
    return [(dets[v], videos[v]) for v in sorted(videos)]


def shards(n: int, scenario: str, rank: int) -> list[int]:
    if scenario == "empty":
        return list(range(n)) if rank == 0 else []
    cut = (n + 1) // 2 + 1  # rank 0 takes more than half; rank 1 the rest plus a duplicate of video 0
    return list(range(cut)) if rank == 0 else [*range(cut, n), 0]


def run_metrics(rank: int, fixtures: Path) -> dict[str, dict[str, float]]:
    from vidseg_common.metrics.jandf import JandF
    from vidseg_common.metrics.vis import VideoAP
    from vidseg_common.metrics.ytvos import YouTubeVOSScore

    davis, vis = _davis_items(fixtures / "davis"), _vis_items(fixtures / "ytvis")
    out: dict[str, dict[str, float]] = {}
    for scenario in ("uneven", "empty"):
        jandf, ytvos, video_ap = JandF(), YouTubeVOSScore(), VideoAP()
        for i in shards(len(davis), scenario, rank):
            seq, pred, gt = davis[i]
            jandf.update(pred, gt, seq)
            ytvos.update(pred, gt, seq, seen=[True, i % 2 == 0, False])
        for i in shards(len(vis), scenario, rank):
            video_ap.update(*vis[i])
        for name, metric in (("jandf", jandf), ("ytvos", ytvos), ("vap", video_ap)):
            out[f"{name}/{scenario}"] = {k: float(v) for k, v in metric.compute().items()}
        with jandf.sync_context():
            out[f"jandf_objects/{scenario}"] = {k: v["J-Mean"] for k, v in jandf.per_object_table().items()}
    return out


def main() -> None:
    fixtures, out_path, rank, port = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*was called before the ``update`` method.*")  # the empty rank
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        result = run_metrics(rank, Path(fixtures))
        if rank == 0:
            Path(out_path).write_text(json.dumps(result))
        dist.barrier()  # both ranks are past their last collective
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    # Exit without tearing gloo down: destroying the group while the peer does the same can abort the process
    # ("terminate called without an active exception", seen once in ~10 runs) after the results are written.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
