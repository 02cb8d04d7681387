"""LightningDataModules for the three tasks (VOS, VIS, VSS), configurable from YAML via LightningCLI."""

from vidseg_common.data.datamodules.base import ClipDataModule
from vidseg_common.data.datamodules.vis import VISDataModule
from vidseg_common.data.datamodules.vos import VOSDataModule
from vidseg_common.data.datamodules.vss import VSSDataModule

__all__ = ["ClipDataModule", "VISDataModule", "VOSDataModule", "VSSDataModule"]
