"""vidseg::sparse_conv2d: gather→GEMM→scatter path vs the dense-conv-then-mask definition."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from vidseg_common.errors import ConfigError
from vidseg_common.ops.sparse_conv2d import (
    conv_output_size,
    sparse_conv2d,
    sparse_conv2d_reference,
    sparse_conv2d_torch,
)

pytestmark = pytest.mark.usefixtures("one_thread")

# (C_in, C_out, H, W, kernel, stride, padding, dilation)
CONFIGS = [
    (5, 7, 9, 8, (3, 3), [1, 1], [1, 1], [1, 1]),
    (4, 6, 7, 10, (1, 1), [1, 1], [0, 0], [1, 1]),
    (3, 5, 11, 9, (3, 3), [2, 1], [0, 2], [1, 2]),
    (6, 4, 8, 8, (3, 1), [2, 2], [1, 0], [1, 1]),
]


def _inputs(c_in, c_out, h, w, kernel, stride, padding, dilation, density, bsz=2, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(bsz, c_in, h, w, generator=gen, dtype=dtype)
    weight = torch.randn(c_out, c_in, *kernel, generator=gen, dtype=dtype)
    bias = torch.randn(c_out, generator=gen, dtype=dtype)
    h_out = conv_output_size(h, kernel[0], stride[0], padding[0], dilation[0])
    w_out = conv_output_size(w, kernel[1], stride[1], padding[1], dilation[1])
    mask = torch.rand(bsz, h_out, w_out, generator=gen) < density
    return x, weight, bias, mask


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
def test_fast_path_matches_reference_float64(config, density, monkeypatch):
    monkeypatch.setenv("VIDSEG_OPS_BACKEND", "torch")
    x, weight, bias, mask = _inputs(*config, density=density)
    stride, padding, dilation = config[5:]
    expected = sparse_conv2d_reference(x, weight, bias, mask, stride, padding, dilation)
    got = sparse_conv2d(x, weight, bias, mask, stride, padding, dilation)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    # the reference itself is nn.Conv2d where computed and exactly 0 (no bias) elsewhere
    dense = F.conv2d(x, weight, bias, stride, padding, dilation)
    assert torch.equal(expected[~mask[:, None].expand_as(dense)], torch.zeros_like(dense)[~mask[:, None].expand_as(dense)])
    torch.testing.assert_close(expected[mask[:, None].expand_as(dense)], dense[mask[:, None].expand_as(dense)])


def test_without_bias_and_float32_chunked(monkeypatch):
    """No bias; more positions than one GEMM chunk (chunk size patched down) in float32."""
    import vidseg_common.ops.sparse_conv2d as mod

    monkeypatch.setattr(mod, "ROWS_PER_CHUNK", 7)
    x, weight, _, mask = _inputs(*CONFIGS[0], density=0.6, dtype=torch.float32)
    got = sparse_conv2d_torch(x, weight, None, mask, [1, 1], [1, 1], [1, 1])
    expected = sparse_conv2d_reference(x, weight, None, mask, [1, 1], [1, 1], [1, 1])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_reference_backend_switch(monkeypatch):
    x, weight, bias, mask = _inputs(*CONFIGS[0], density=0.5)
    monkeypatch.setenv("VIDSEG_OPS_BACKEND", "reference")
    torch.testing.assert_close(
        sparse_conv2d(x, weight, bias, mask, [1, 1], [1, 1], [1, 1]),
        sparse_conv2d_reference(x, weight, bias, mask, [1, 1], [1, 1], [1, 1]),
    )
    monkeypatch.setenv("VIDSEG_OPS_BACKEND", "triton")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ConfigError, match="TRITON_INTERPRET"):
        sparse_conv2d(x, weight, bias, mask, [1, 1], [1, 1], [1, 1])


def test_gradcheck():
    x, weight, bias, mask = _inputs(2, 3, 6, 5, (3, 3), [2, 1], [0, 2], [1, 2], density=0.5, bsz=1)
    args = (x.requires_grad_(), weight.requires_grad_(), bias.requires_grad_())
    assert torch.autograd.gradcheck(lambda a, w, b: sparse_conv2d(a, w, b, mask, [2, 1], [0, 2], [1, 2]), args)


def test_gradients_equal_masked_dense_conv():
    """Backward = autograd through dense conv × mask (only computed positions receive gradient)."""
    x, weight, bias, mask = _inputs(*CONFIGS[0], density=0.4)
    upstream = torch.randn(2, 7, 9, 8, dtype=torch.float64)
    leaves = [t.clone().requires_grad_() for t in (x, weight, bias)]
    (sparse_conv2d(*leaves, mask, [1, 1], [1, 1], [1, 1]) * upstream).sum().backward()
    ref = [t.clone().requires_grad_() for t in (x, weight, bias)]
    (F.conv2d(*ref, 1, 1) * mask[:, None] * upstream).sum().backward()
    for a, b in zip(leaves, ref):
        torch.testing.assert_close(a.grad, b.grad)


def test_opcheck():
    x, weight, bias, mask = _inputs(*CONFIGS[0], density=0.5)
    torch.library.opcheck(
        torch.ops.vidseg.sparse_conv2d.default,
        (x.requires_grad_(), weight.requires_grad_(), bias, mask, [1, 1], [1, 1], [1, 1]),
    )
    torch.library.opcheck(torch.ops.vidseg.sparse_conv2d.default, (x, weight, None, mask, [1, 1], [1, 1], [1, 1]))


def test_torch_compile_fullgraph():
    x, weight, bias, mask = _inputs(*CONFIGS[0], density=0.5, dtype=torch.float32)

    def layer(a, w, b, m):
        return torch.relu(sparse_conv2d(a, w, b, m, [1, 1], [1, 1], [1, 1])) + 1.0

    compiled = torch.compile(layer, fullgraph=True, backend="inductor")
    torch.testing.assert_close(compiled(x, weight, bias, mask), layer(x, weight, bias, mask))


def test_flop_counter_counts_computed_positions():
    x, weight, bias, mask = _inputs(*CONFIGS[0], density=0.3)
    full = torch.ones_like(mask)
    with FlopCounterMode(display=False) as dense_counter:
        F.conv2d(x, weight, None, 1, 1)
    with FlopCounterMode(display=False) as full_counter:
        sparse_conv2d(x, weight, None, full, [1, 1], [1, 1], [1, 1])
    with FlopCounterMode(display=False) as sparse_counter:
        sparse_conv2d(x, weight, bias, mask, [1, 1], [1, 1], [1, 1])
    # with every position computed, our count equals torch's own convolution formula
    assert full_counter.get_total_flops() == dense_counter.get_total_flops() > 0
    assert sparse_counter.get_flop_counts()["Global"][torch.ops.vidseg.sparse_conv2d] == 2 * int(mask.sum()) * 7 * 5 * 9
    # backward: grad_input and grad_weight; with every position computed = torch's conv backward count
    leaves = [t.clone().requires_grad_() for t in (x, weight)]
    with FlopCounterMode(display=False) as backward_counter:
        sparse_conv2d(*leaves, None, full, [1, 1], [1, 1], [1, 1]).sum().backward()
    with FlopCounterMode(display=False) as dense_backward_counter:
        F.conv2d(*[t.clone().requires_grad_() for t in (x, weight)], None, 1, 1).sum().backward()
    assert backward_counter.get_total_flops() == dense_backward_counter.get_total_flops() == 3 * full_counter.get_total_flops()


def test_non_contiguous_inputs_are_accepted():
    x, weight, bias, mask = _inputs(*CONFIGS[0], density=0.5)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    x_t = x.transpose(2, 3).contiguous().transpose(2, 3)
    w_t = weight.transpose(2, 3).contiguous().transpose(2, 3)
    m_t = mask.transpose(1, 2).contiguous().transpose(1, 2)
    expected = sparse_conv2d_reference(x, weight, bias, mask, [1, 1], [1, 1], [1, 1])
    for args in ((x_cl, weight, mask), (x_t, w_t, m_t)):
        torch.testing.assert_close(sparse_conv2d(args[0], args[1], bias, args[2], [1, 1], [1, 1], [1, 1]), expected)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: {**a, "mask": a["mask"][:, 1:]}, "mask must be"),
        (lambda a: {**a, "mask": a["mask"].float()}, "bool"),
        (lambda a: {**a, "weight": a["weight"].float()}, "dtype"),
        (lambda a: {**a, "weight": a["weight"][:, :3]}, "groups"),
        (lambda a: {**a, "bias": a["bias"][:3]}, "bias"),
        (lambda a: {**a, "x": a["x"][0]}, r"\(B, C_in, H, W\)"),
        (lambda a: {**a, "stride": [0, 1]}, "stride"),
        (lambda a: {**a, "padding": [1]}, "padding"),
        (lambda a: {**a, "x": a["x"][:, :, :1, :1], "mask": a["mask"][:, :1, :1], "padding": [0, 0]}, "smaller"),
    ],
)
def test_bad_input_raises_config_error(change, message):
    x, weight, bias, mask = _inputs(*CONFIGS[0], density=0.5)
    args = change({"x": x, "weight": weight, "bias": bias, "mask": mask, "stride": [1, 1], "padding": [1, 1], "dilation": [1, 1]})
    with pytest.raises(ConfigError, match=message):
        sparse_conv2d(**args)
