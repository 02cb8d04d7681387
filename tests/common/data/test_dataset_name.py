"""The dataset tag recorded in MLflow runs says which layout and whether the data was synthetic."""

from __future__ import annotations

from pathlib import Path

from vidseg_common.data.datamodules.vos import VOSDataModule
from vidseg_common.data.datamodules.vss import VSSDataModule


def test_dataset_name(tmp_path: Path) -> None:
    assert VOSDataModule(root="synthetic").dataset_name == "synthetic-davis"
    assert VOSDataModule(root=str(tmp_path), dataset="youtube_vos").dataset_name == "youtube_vos"
    assert VSSDataModule(root=str(tmp_path), dataset="camvid").dataset_name == "camvid"
