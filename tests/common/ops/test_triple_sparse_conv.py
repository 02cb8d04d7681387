"""TripleSparseConv2d (SpVOS §III-C): policies, state, dense mode, statistics, parameter counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from vidseg_common.errors import ConfigError
from vidseg_common.ops.triple_sparse_conv import COMPUTE, REUSE, SKIP, TripleSparseConv2d

pytestmark = pytest.mark.usefixtures("one_thread")

MIB = 2**20 / 4  # fp32 parameters per MiB


def _gate_mib(convs: list[nn.Conv2d]) -> float:
    return sum(p.numel() for c in convs for p in TripleSparseConv2d.from_conv(c).gate.parameters()) / MIB


def _conv(c_in: int, c_out: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, padding=k // 2)


def _resnet50_q_convs(dagger: bool) -> list[nn.Conv2d]:
    net = torchvision.models.resnet50()
    convs = []
    for layer in (net.layer1, net.layer2, net.layer3):
        for block in layer:
            convs += [block.conv1, block.conv2, block.conv3]
            if dagger and block.downsample is not None:
                convs.append(block.downsample[0])
    if dagger:  # stem + STCN key_proj (1024→64, 3×3) + key_comp (1024→512, 3×3)
        convs += [net.conv1, _conv(1024, 64, 3), _conv(1024, 512, 3)]
    return convs


def _stcn_decoder_convs(dagger: bool) -> list[nn.Conv2d]:
    # ResBlock conv1/conv2 of compress (1024→512), up_16_8 (512→256), up_8_4 (256→256)
    convs = [_conv(1024, 512, 3), _conv(512, 512, 3), _conv(512, 256, 3), _conv(256, 256, 3), _conv(256, 256, 3), _conv(256, 256, 3)]
    if dagger:  # ResBlock downsample convs, the two skip convs, pred
        convs += [_conv(1024, 512, 3), _conv(512, 256, 3), _conv(512, 512, 3), _conv(256, 256, 3), _conv(256, 1, 3)]
    return convs


def _value_encoder_convs() -> list[nn.Conv2d]:
    net = torchvision.models.resnet18()
    convs = [c for layer in (net.layer1, net.layer2, net.layer3) for block in layer for c in (block.conv1, block.conv2)]
    # fuser: ResBlock(1280→512) and ResBlock(512→512), conv1 + conv2 each
    return [*convs, _conv(1280, 512, 3), _conv(512, 512, 3), _conv(512, 512, 3), _conv(512, 512, 3)]


@pytest.mark.parametrize(
    "convs, paper_mib",
    [
        (lambda: _resnet50_q_convs(False), 0.70),  # Table III Q: 208.48 − 207.78
        (lambda: _stcn_decoder_convs(False), 0.58),  # Table III D
        (lambda: _resnet50_q_convs(False) + _stcn_decoder_convs(False), 1.28),  # Table I: 209.06 − 207.78
        (lambda: _resnet50_q_convs(True), 1.14),  # Table III Q†: 208.92 − 207.78
        (lambda: _stcn_decoder_convs(True), 1.11),  # Table III D†
        (_value_encoder_convs, 0.91),  # Table II w/ M: 209.97 − 209.06
    ],
)
def test_gate_parameter_counts_match_spvos_tables(convs, paper_mib):
    assert round(_gate_mib(convs()), 2) == paper_mib


def _layer(dense_above: float = 1.0, **kwargs) -> TripleSparseConv2d:
    torch.manual_seed(0)
    return TripleSparseConv2d(5, 7, 3, padding=1, dense_above=dense_above, **kwargs).double()


def _expected_eval(layer: TripleSparseConv2d, prev_x, x, prev_out) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 8 written independently: argmax of the gate logits, dense conv, masks."""
    choice = layer.gate(torch.cat([prev_x, x], 1)).argmax(1, keepdim=True)
    conv = F.conv2d(x, layer.weight, layer.bias, padding=1)
    return (choice == COMPUTE) * conv + (choice == REUSE) * prev_out, choice


@pytest.mark.parametrize("dense_above", [1.0, 0.0])  # gather op / dense-then-mask switch
def test_eval_forward_follows_eq8(dense_above):
    layer = _layer(dense_above).eval()
    frames = [torch.randn(2, 5, 9, 8, dtype=torch.float64) for _ in range(3)]
    with torch.no_grad():
        first = layer(frames[0])
        torch.testing.assert_close(first, F.conv2d(frames[0], layer.weight, layer.bias, padding=1))
        prev_x, prev_out = frames[0], first
        seen = set()
        for x in frames[1:]:
            expected, choice = _expected_eval(layer, prev_x, x, prev_out)
            out = layer(x)
            torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
            seen |= set(choice.unique().tolist())
            prev_x, prev_out = x, out
    assert seen == {SKIP, REUSE, COMPUTE}  # the random gate exercises all three policies


def test_eval_with_autograd_enabled_and_stride_two():
    """Same values with grad mode on (out-of-place path, gradients reach the conv weight) and stride 2."""
    torch.manual_seed(1)
    layer = TripleSparseConv2d(4, 6, 3, stride=2, padding=1, dense_above=1.0).double().eval()
    x0, x1 = torch.randn(2, 2, 4, 9, 7, dtype=torch.float64)
    layer(x0)
    out = layer(x1)
    choice = layer.gate(torch.cat([x0, x1], 1)).argmax(1, keepdim=True)
    conv = F.conv2d(x1, layer.weight, layer.bias, stride=2, padding=1)
    prev = F.conv2d(x0, layer.weight, layer.bias, stride=2, padding=1)
    torch.testing.assert_close(out, (choice == COMPUTE) * conv + (choice == REUSE) * prev)
    out.sum().backward()
    assert layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("policy", [SKIP, REUSE, COMPUTE])
def test_single_policy_outputs(policy):
    layer = _layer().eval()
    with torch.no_grad():
        layer.gate.weight.zero_()
        layer.gate.bias.copy_(torch.tensor([0.0, 0.0, 0.0]))
        layer.gate.bias[policy] = 5.0
        x0, x1 = torch.randn(2, 1, 5, 6, 6, dtype=torch.float64)
        out0, out1 = layer(x0), layer(x1)
    expected = {SKIP: torch.zeros_like(out0), REUSE: out0, COMPUTE: F.conv2d(x1, layer.weight, layer.bias, padding=1)}
    torch.testing.assert_close(out1, expected[policy])
    stats = layer.statistics()
    assert stats[f"{['skip', 'reuse', 'compute'][policy]}_fraction"] == 1.0


def test_training_uses_gumbel_straight_through_and_gradients_reach_gate():
    layer = _layer().train()
    x0, x1 = torch.randn(2, 2, 5, 6, 6, dtype=torch.float64)
    out0 = layer(x0)
    torch.manual_seed(123)
    out1 = layer(x1)
    torch.manual_seed(123)
    logits = layer.gate(torch.cat([x0, x1], 1))
    gate = F.gumbel_softmax(logits, tau=layer.tau, hard=True, dim=1)
    conv = F.conv2d(x1, layer.weight, layer.bias, padding=1)
    torch.testing.assert_close(out1, gate[:, 2:3] * conv + gate[:, 1:2] * out0)
    assert torch.equal(layer.last_gate.sum(1), torch.ones_like(logits[:, 0]))  # hard one-hot forward
    (out1.square().sum() + layer.last_gate[:, COMPUTE].mean()).backward()
    assert layer.gate.weight.grad.abs().sum() > 0 and layer.weight.grad.abs().sum() > 0


def test_dense_mode_reset_and_shape_change():
    layer = _layer().eval()
    x = torch.randn(1, 5, 6, 6, dtype=torch.float64)
    conv = F.conv2d(x, layer.weight, layer.bias, padding=1)
    with torch.no_grad():
        layer(x)
        with layer.dense():
            torch.testing.assert_close(layer(x), conv)
        assert not layer.dense_mode
        layer.reset()
        torch.testing.assert_close(layer(x), conv)  # first frame after reset: dense
        with pytest.raises(ConfigError, match="reset"):
            layer(torch.randn(1, 5, 7, 6, dtype=torch.float64))
    stats = layer.statistics()
    assert stats["dense_pixels"] == 3 * 36 and stats["sparse_pixels"] == 0 and stats["flops_ratio"] == 1.0


@pytest.mark.parametrize("grad", [False, True], ids=["inference", "autograd"])
def test_statistics_and_flop_counter_agree(grad):
    """Inference path (one gathered GEMM) and autograd path (``vidseg::sparse_conv2d``) count the same FLOPs."""
    layer = _layer().eval()
    x0, x1 = torch.randn(2, 2, 5, 9, 8, dtype=torch.float64)
    with torch.no_grad():
        layer(x0)
    layer.reset_statistics()
    with torch.set_grad_enabled(grad), FlopCounterMode(display=False) as counter:
        layer(x1)
    stats = layer.statistics()
    assert stats["skip_fraction"] + stats["reuse_fraction"] + stats["compute_fraction"] == pytest.approx(1.0)
    computed = int(layer.last_gate[:, COMPUTE].sum())
    assert 0 < computed < 2 * 9 * 8
    assert stats["compute_fraction"] == computed / (2 * 9 * 8)
    per_position = 2 * 5 * 9 * 7
    assert stats["executed_flops"] == computed * per_position
    assert stats["dense_flops"] == 2 * 9 * 8 * per_position
    if grad:
        assert counter.get_flop_counts()["Global"][torch.ops.vidseg.sparse_conv2d] == stats["executed_flops"]
    # everything else the frame counted is the gate: a 2·C_in → 3 conv with the layer's kernel
    assert stats["gate_flops"] == counter.get_total_flops() - stats["executed_flops"] == 2 * 10 * 9 * 3 * 2 * 9 * 8


@pytest.mark.parametrize("geometry", [(3, 1, 1, 1), (1, 1, 0, 1), (3, 2, 1, 1), ((3, 1), (2, 1), (0, 2), (1, 2))])
def test_gate_conv_equals_conv_on_concatenated_input(geometry):
    from vidseg_common.ops.sparse_conv_gates import gate_conv2d

    kernel, stride, padding, dilation = geometry
    gate = nn.Conv2d(9, 3, kernel, stride, padding, dilation).double()
    a, b = torch.randn(2, 4, 9, 8, dtype=torch.float64), torch.randn(2, 5, 9, 8, dtype=torch.float64)
    torch.testing.assert_close(gate_conv2d([a, b], gate), gate(torch.cat([a, b], 1)), rtol=1e-12, atol=1e-12)


def test_drop_in_for_conv2d():
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1)
    layer = TripleSparseConv2d.from_conv(conv)
    restored = nn.Conv2d(4, 6, 3, stride=2, padding=1)
    restored.load_state_dict({k: v for k, v in layer.state_dict().items() if not k.startswith("gate.")})
    x = torch.randn(1, 4, 10, 10)
    torch.testing.assert_close(layer(x), conv(x))
    torch.testing.assert_close(restored(x), conv(x))
    with pytest.raises(ConfigError, match="groups"):
        TripleSparseConv2d(4, 4, 3, groups=2)
    with pytest.raises(ConfigError, match="tau"):
        TripleSparseConv2d(4, 4, 3, tau=0.0)
