"""The STCN max-skip curriculum follows the epoch when Lightning reloads the train loader every epoch."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from vidseg_common.data.datamodules import VOSDataModule


class _Recorder(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.skips: list[int] = []

    def on_train_epoch_start(self) -> None:
        self.skips.append(self.trainer.datamodule.datasets["train"].sampler.max_skip)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        assert batch["frames"].shape[1] == 3
        return (self.weight * batch["frames"].mean()).sum() + self.weight.square().sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.filterwarnings("ignore")
def test_max_skip_follows_stcn_schedule(tmp_path) -> None:
    dm = VOSDataModule(synthetic={"height": 48, "width": 80, "num_frames": 12, "num_videos": 1, "num_val_videos": 1},
                       cache_dir=str(tmp_path), crop_size=(32, 32), batch_size=1, num_workers=0, max_skip=5)
    module = _Recorder()
    trainer = L.Trainer(max_epochs=10, limit_train_batches=1, limit_val_batches=0, reload_dataloaders_every_n_epochs=1,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", default_root_dir=tmp_path)
    trainer.fit(module, datamodule=dm)
    # STCN: start 5, then 10/15/20/25 from 10/20/30/40 % of training, back to 5 at 90 %
    assert module.skips == [5, 10, 15, 20, 25, 25, 25, 25, 25, 5]
