"""2-process CPU DDP (gloo) fit of every paper's CLI, and its main metric against a single-process ``validate``.

Each paper trains one tiny epoch with ``--trainer.devices 2 --trainer.strategy ddp`` (through
:func:`ddp_fit.run_ddp_fit`: a subprocess, since under pytest Lightning's ``ddp`` launcher would re-run the pytest
command line). ``last.ckpt`` is written after that epoch's validation, so ``validate --ckpt_path last.ckpt`` on
one process evaluates the same weights on the same validation videos: the paper's main metric must come out
equal. A difference means the distributed evaluation path (``DistributedSampler`` padding, metric sync, per-rank
state such as BatchNorm buffers) changes the number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from ddp_fit import REPO, last_value, run_ddp_fit, run_predict, run_single_validate


@dataclass(frozen=True)
class Paper:
    name: str
    args: tuple[str, ...]
    metric: str  # the paper's main metric
    metric_in_unit_range: bool  # also check 0 ≤ metric ≤ 1
    global_step: int | None  # of last.ckpt; None: not checked
    config: str | None = None  # YAML written to <tmp>/ddp.yaml and given first as -c

    def __str__(self) -> str:
        return self.name


CPU = str(REPO / "experiments/_base/trainer_cpu.yaml")
ONE_EPOCH = ("--trainer.max_epochs", "1", "--trainer.check_val_every_n_epoch", "1")

SEQFORMER_CONFIG = """
seed_everything: 0
model:
  {backbone: test_resnet, frozen_backbone: [], num_classes: 17, num_queries: 4, hidden_dim: 32, ffn_dim: 64, dropout: 0.0,
   num_encoder_layers: 1, num_decoder_layers: 2, num_heads: 4, encoder_points: 2, decoder_points: 2, top_k: 3, bn_mode: train}
data:
  class_path: vidseg_common.data.datamodules.vis.VISDataModule
  init_args:
    {root: synthetic, num_frames: 3, short_side: null, max_size: null, eval_short_side: null, batch_size: 1,
     num_workers: 0, synthetic: {num_videos: 4, num_val_videos: 2, num_frames: 15, height: 64, width: 96, max_objects: 2}}
trainer:
  {accelerator: cpu, devices: 2, strategy: ddp, max_epochs: 1, num_sanity_val_steps: 0, enable_progress_bar: false,
   log_every_n_steps: 1}
"""

PAPERS = [
    Paper("sstvos", (
        "-c", CPU, "-c", str(REPO / "experiments/sstvos/synthetic.yaml"),
        "--data.init_args.batch_size", "2", "--data.init_args.crop_size", "[64, 64]", "--data.init_args.repeat", "1",
        "--data.init_args.synthetic",
        '{"num_videos": 4, "num_val_videos": 2, "num_frames": 5, "height": 48, "width": 64, "full_occlusion": true}',
        "--model.hidden_dim", "16", "--model.num_heads", "2", "--model.ffn_dim", "16", "--model.stage_channels", "[16, 16]",
        *ONE_EPOCH,
    ), "val/jf", True, 1),  # 4 clips, batch 2, 2 ranks → 1 step per rank
    Paper("spvos", (
        "-c", str(REPO / "experiments/spvos/synthetic.yaml"),
        "--model.value_dim", "32", "--model.decoder_channels", "[32, 16, 16]",
        "--data.init_args.batch_size", "2", "--data.init_args.crop_size", "[32, 32]",
        "--data.init_args.synthetic", '{"num_videos": 4, "num_val_videos": 2, "num_frames": 6, "height": 32, "width": 48}',
        *ONE_EPOCH,
    ), "val/jf", True, 1),  # 4 clips, batch 2, 2 ranks → 1 step per rank
    # the all-reduced box normaliser and VideoAP's cross-process sync run
    Paper("defvistr", (
        "-c", CPU, "-c", str(REPO / "experiments/defvistr/synthetic.yaml"),
        "--model.hidden_dim", "48", "--model.num_encoder_layers", "1", "--model.num_decoder_layers", "1",
        "--model.ffn_dim", "32", "--model.num_points", "2", "--model.num_frames", "2",
        "--data.init_args.num_frames", "2", "--data.init_args.batch_size", "1",
        "--data.init_args.synthetic.num_videos", "4", "--data.init_args.synthetic.num_val_videos", "2",
        "--data.init_args.synthetic.num_frames", "10", "--data.init_args.synthetic.height", "64",
        "--data.init_args.synthetic.width", "64",
        *ONE_EPOCH, "--trainer.enable_progress_bar", "false",
    ), "val/ap", False, None),
    Paper("seqformer", (), "val/ap", False, 2, SEQFORMER_CONFIG),  # 4 clips, batch 1, 2 ranks → 2 steps per rank
    Paper("stt", (
        "-c", CPU, "-c", str(REPO / "experiments/stt/synthetic.yaml"),
        "--data.init_args.batch_size", "2", "--data.init_args.num_previous", "2",
        "--data.init_args.synthetic", '{"num_videos": 4, "num_val_videos": 2, "height": 32, "width": 64}',
        "--model.num_key_frames", "2", "--model.nsm_radius", "1",
        *ONE_EPOCH,
    ), "val/miou", True, 1),  # 4 clips, batch 2, 2 ranks → 1 step per rank
]


@pytest.mark.slow
@pytest.mark.parametrize("paper", PAPERS, ids=str)
def test_ddp_fit_matches_single_process_validate(paper: Paper, tmp_path: Path) -> None:
    args = list(paper.args)
    if paper.config is not None:
        config = tmp_path / "ddp.yaml"
        config.write_text(paper.config)
        args = ["-c", str(config), *args]

    run, last = run_ddp_fit(paper.name, args, tmp_path)
    ddp_value = last_value(run, paper.metric, tmp_path)
    if paper.metric_in_unit_range:
        assert 0.0 <= ddp_value <= 1.0
    checkpoint = torch.load(last, weights_only=True, map_location="cpu")
    if paper.global_step is not None:
        assert checkpoint["global_step"] == paper.global_step

    single = run_single_validate(paper.name, args, last, tmp_path)
    single_value = single.data.metrics[paper.metric]
    print(f"{paper.name} {paper.metric}: DDP {ddp_value!r}, single process {single_value!r}")
    assert single_value == pytest.approx(ddp_value, abs=1e-6), (
        f"{paper.metric}: 2-process DDP fit logged {ddp_value}, single-process validate of last.ckpt {single_value}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("paper", [p for p in PAPERS if p.name in ("defvistr", "seqformer")], ids=str)
def test_ddp_predict_writes_the_single_process_results(paper: Paper, tmp_path: Path) -> None:
    """VIS ``predict`` on 2 processes writes one ``results.json`` (rank 0 merges), byte-identical to 1 process.

    3 videos on 2 ranks: the sampler pads with a repeated video, whose second prediction must not appear twice.
    The model is the seeded initialisation (``seed_everything: 0``), the same on every rank and run.
    """
    args = list(paper.args)
    if paper.config is not None:
        config = tmp_path / "ddp.yaml"
        config.write_text(paper.config)
        args = ["-c", str(config), *args]
    args += ["--data.init_args.synthetic.num_val_videos", "3"]
    two = run_predict(paper.name, args, tmp_path, 2, tmp_path / "two") / "results.json"
    one = run_predict(paper.name, args, tmp_path, 1, tmp_path / "one") / "results.json"
    assert not list((tmp_path / "two").glob("results.rank*"))
    results = json.loads(one.read_text())
    assert len({r["video_id"] for r in results}) == 3, "every video has predictions (else the check is vacuous)"
    assert two.read_bytes() == one.read_bytes()
