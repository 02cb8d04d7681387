"""FLOP counting (incl. custom ops that declare a formula) and the benchmark helpers."""

from __future__ import annotations

import pytest
import torch
from tiny import TinyModule
from torch import nn
from torch.utils.flop_counter import register_flop_formula

from vidseg_common.engine.benchmark import benchmark_module, count_flops, count_parameters


@torch.library.custom_op("vidseg_test::scale_no_formula", mutates_args=())
def _scale_no_formula(x: torch.Tensor) -> torch.Tensor:
    return x * 2


@torch.library.custom_op("vidseg_test::scale_with_formula", mutates_args=())
def _scale_with_formula(x: torch.Tensor) -> torch.Tensor:
    return x * 2


@register_flop_formula(torch.ops.vidseg_test.scale_with_formula)
def _scale_flops(x_shape, *args, **kwargs) -> int:
    numel = 1
    for size in x_shape:
        numel *= size
    return numel


def test_linear_flops_are_two_per_mac() -> None:
    layer = nn.Linear(16, 8)
    flops, uncounted = count_flops(layer, (torch.rand(4, 16),))
    assert flops == 2 * 4 * 16 * 8
    assert uncounted == []


@pytest.mark.parametrize("kind", ["mha", "sdpa"])
def test_attention_flops_are_counted_in_eval_mode(kind: str) -> None:
    """Fused CPU attention kernels have no FLOP formula; counting must not drop them silently."""
    batch, length, dim, heads = 2, 7, 16, 4
    x = torch.randn(batch, length, dim)
    if kind == "mha":
        mha = nn.MultiheadAttention(dim, heads, batch_first=True).eval()  # eligible for the fast path
        fn = lambda t: mha(t, t, t, need_weights=False)[0]  # noqa: E731
        projections = 2 * batch * length * dim * (3 * dim) + 2 * batch * length * dim * dim
    else:
        fn = lambda t: nn.functional.scaled_dot_product_attention(t, t, t)  # noqa: E731
        projections = 0
    attention = 2 * 2 * batch * length * length * dim  # QK^T and AV, 2 FLOPs per multiply-add
    flops, uncounted = count_flops(fn, [x])
    assert flops == projections + attention
    assert uncounted == []
    assert torch.backends.mha.get_fastpath_enabled()  # restored afterwards


def test_custom_ops_with_and_without_formula() -> None:
    x = torch.rand(3, 5)
    flops, uncounted = count_flops(torch.ops.vidseg_test.scale_with_formula, (x,))
    assert flops == 15 and uncounted == []
    flops, uncounted = count_flops(torch.ops.vidseg_test.scale_no_formula, (x,))
    assert flops == 0 and uncounted == ["vidseg_test.scale_no_formula"]


def test_benchmark_module_reports_consistent_numbers() -> None:
    model = TinyModule(width=4)
    result = benchmark_module(model, batch_size=2, num_frames=3, height=8, width=8, warmup=1, iters=2)
    assert result.params == count_parameters(model) == 3 * 4 * 9 + 4 + 2 * 4 + 4 * 4 + 2 * 4 + 2
    conv_flops = 2 * (3 * 9 * 4) * 8 * 8 * 2 + 2 * (4 * 2) * 8 * 8 * 2  # backbone conv + 1×1 head, B=2
    assert result.flops >= conv_flops
    assert result.frames_per_s == result.clips_per_s * 3


def test_benchmark_on_fit_end_logs_into_the_fit_run(mlflow_uri: str, tmp_path) -> None:
    """A fit with the opt-in callback records time/fit_s and benchmark/* (FLOPs by the conv formula) in its run."""
    from mlflow import MlflowClient
    from tiny import main

    main(args=["fit", "--data", "tiny.TinyDataModule", "--data.size", "16", "--data.num_train", "4", "--data.num_val", "2",
               "--trainer.accelerator", "cpu", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
               "--trainer.default_root_dir", str(tmp_path), "--model.width", "8",
               "--trainer.callbacks+=vidseg_common.engine.callbacks.BenchmarkOnFitEnd",
               "--trainer.callbacks.init_args.height", "16", "--trainer.callbacks.init_args.width", "16",
               "--trainer.callbacks.init_args.iters", "2"])
    client = MlflowClient(tracking_uri=mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    metrics = run.data.metrics
    conv_flops = 2 * (3 * 9 * 8) * 16 * 16 + 2 * (8 * 2) * 16 * 16  # 3×3 conv 3→8 and 1×1 head 8→2, B=1
    assert metrics["benchmark/gflops"] == pytest.approx(conv_flops / 1e9)
    assert metrics["benchmark/params"] == metrics["model/params"] == 3 * 8 * 9 + 8 + 2 * 8 + 4 * 8 + 8 * 2 + 2
    assert metrics["benchmark/fps"] > 0 and metrics["time/fit_s"] > 0
    assert run.data.tags["benchmark/input"] == "B=1 T=2 16x16 on cpu"  # T from the datamodule's num_frames
    assert "benchmark.json" in [a.path for a in client.list_artifacts(run.info.run_id)]
