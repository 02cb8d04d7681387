"""2-process CPU DDP (gloo) smoke test of ``vidseg-seqformer fit`` (issue 9, must-show 4).

Run through :func:`ddp_fit.run_ddp_fit` (a subprocess: under pytest, Lightning's ``ddp`` launcher would re-run
the pytest command line).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ddp_fit import run_ddp_fit

CONFIG = """
seed_everything: 0
model:
  {backbone: test_resnet, backbone_frozen: [], num_classes: 17, num_queries: 4, d_model: 32, d_ffn: 64, dropout: 0.0,
   enc_layers: 1, dec_layers: 2, n_heads: 4, enc_points: 2, dec_points: 2, top_k: 3, bn_mode: train}
data:
  class_path: vidseg_common.data.datamodules.vis.VISDataModule
  init_args:
    {root: synthetic, num_frames: 3, short_side: null, max_size: null, eval_short_side: null, batch_size: 1,
     num_workers: 0, synthetic: {num_videos: 4, num_val_videos: 2, num_frames: 15, height: 64, width: 96, max_objects: 2}}
trainer:
  {accelerator: cpu, devices: 2, strategy: ddp, max_epochs: 1, num_sanity_val_steps: 0, enable_progress_bar: false,
   log_every_n_steps: 1}
"""


@pytest.mark.slow
def test_fit_with_two_cpu_processes(tmp_path: Path) -> None:
    config = tmp_path / "ddp.yaml"
    config.write_text(CONFIG)
    run, last = run_ddp_fit("seqformer", ["-c", str(config)], tmp_path)
    assert "val/ap" in run.data.metrics
    checkpoint = torch.load(last, weights_only=True, map_location="cpu")
    assert checkpoint["global_step"] == 2  # 4 clips, batch 1, 2 ranks → 2 steps per rank
