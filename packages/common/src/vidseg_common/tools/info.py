"""``vidseg info``: versions, devices and op backends of this installation (for bug reports)."""

from __future__ import annotations

import argparse
import importlib.metadata
import platform

HELP = "print versions, devices and the ops backend in use"

_DISTRIBUTIONS = (
    "vidseg-common", "vidseg-sstvos", "vidseg-spvos", "vidseg-defvistr", "vidseg-seqformer", "vidseg-stt",
    "torch", "torchvision", "lightning", "torchmetrics", "timm", "mlflow", "albumentations", "triton",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", help="also list distributions that are not installed")


def run(args: argparse.Namespace) -> int:
    import torch

    from vidseg_common.ops.backend import requested_backend, triton_available

    print(f"python          {platform.python_version()} ({platform.machine()}, {platform.system()})")
    for dist in _DISTRIBUTIONS:
        try:
            print(f"{dist:<16}{importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            if args.all:
                print(f"{dist:<16}(not installed)")
    cuda = torch.cuda.is_available()
    devices = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) if cuda else "none"
    print(f"cuda devices    {devices}")
    print(f"ops backend     {requested_backend()} (triton importable: {triton_available()})")
    return 0
