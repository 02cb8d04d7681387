"""vidseg::windowed_temporal_attn (STT) against dense masked attention, and STT Table 3's key sizes."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vidseg_common.errors import ConfigError, DataError
from vidseg_common.ops.windowed_temporal_attn import (
    _windowed_temporal_attn_op,
    num_temporal_keys,
    temporal_window_radii,
    window_key_index,
    windowed_temporal_attn,
    windowed_temporal_attn_reference,
)
from vidseg_common.ops.windowed_temporal_attn_tiled import windowed_attention_tiled


def _inputs(b: int, q: int, c: int, t: int, h: int, w: int, cv: int, seed: int, grad: bool = False):
    gen = torch.Generator().manual_seed(seed)
    query = torch.randn(b, q, c, generator=gen, dtype=torch.float64).requires_grad_(grad)
    key = torch.randn(b, t, c, h, w, generator=gen, dtype=torch.float64).requires_grad_(grad)
    value = torch.randn(b, t, cv, h, w, generator=gen, dtype=torch.float64).requires_grad_(grad)
    positions = torch.stack([torch.randperm(h * w, generator=gen)[:q] for _ in range(b)])
    positions[0, 0] = 0  # a corner: most of its windows fall outside the map
    return query, positions, key, value


@pytest.mark.parametrize(
    ("config", "key_size"),
    [((1, 5, 1), 527), ((2, 5, 1), 639), ((3, 5, 1), 735), ((1, 3, 1), 279), ((1, 7, 1), 679), ((1, 5, 2), 663), ((1, 5, 3), 695)],
)
def test_key_count_reproduces_stt_table3(config, key_size):
    assert num_temporal_keys(7, *config) == key_size


def test_full_attention_key_count_and_radii():
    # Table 3's full-attention row: 57 344 keys = 7 key maps of 64×128 (windows covering the whole map).
    positions = torch.tensor([[0, 64 * 128 - 1, 32 * 128 + 77]])
    index = window_key_index(positions, [128] * 7, 64, 128)
    assert ((index >= 0).sum(-1) == 57344).all()
    assert torch.equal(index[index >= 0].view(3, -1).sort(-1).values[0], torch.arange(57344))
    assert temporal_window_radii(7, 1, 5, 1) == [5, 5, 5, 4, 3, 2, 1]  # l_t = min(s + (T − t)ε, e), t = 1 farthest


@pytest.mark.parametrize("config", [(1, 2, 1), (0, 3, 2)])
def test_matches_dense_masked_attention(config):
    query, positions, key, value = _inputs(2, 5, 3, 3, 4, 5, cv=2, seed=1)
    radii = temporal_window_radii(3, *config)
    out, weights = _windowed_temporal_attn_op(query, positions, key, value, radii, 0.7)
    ref_out, ref_dense = windowed_temporal_attn_reference(query, positions, key, value, radii, 0.7)
    torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)
    index = window_key_index(positions, radii, 4, 5)
    dense = torch.zeros_like(ref_dense).scatter_add_(-1, index.clamp_min(0), weights.masked_fill(index < 0, 0))
    torch.testing.assert_close(dense, ref_dense, rtol=1e-12, atol=1e-12)
    assert weights.shape[-1] == num_temporal_keys(3, *config)


@pytest.mark.parametrize("tile", [2, 3, 8])
def test_tiled_forward_across_tiles(tile):
    """The CPU forward cuts the map into tiles: queries near tile and map borders, 2 heads per position row."""
    query, positions, key, value = _inputs(4, 9, 3, 2, 7, 10, cv=2, seed=6)
    positions = positions[::2]  # (2, Q): rows 0-1 use positions[0], rows 2-3 positions[1]
    radii = [2, 1]
    out, weights = windowed_attention_tiled(query, positions, key, value, radii, 0.6, True, tile)
    ref_out, ref_dense = windowed_temporal_attn_reference(query, positions, key, value, radii, 0.6)
    torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)
    index = window_key_index(positions, radii, 7, 10).repeat_interleave(2, dim=0)
    dense = torch.zeros_like(ref_dense).scatter_add_(-1, index.clamp_min(0), weights.masked_fill(index < 0, 0))
    torch.testing.assert_close(dense, ref_dense, rtol=1e-12, atol=1e-12)


def test_multihead_wrapper_default_scale():
    query, positions, key, value = _inputs(1, 4, 4, 2, 3, 3, cv=4, seed=2)
    out = windowed_temporal_attn(query, positions, key, value, start=0, end=1, expansion=1, num_heads=2)
    radii = temporal_window_radii(2, 0, 1, 1)
    expected = [
        windowed_temporal_attn_reference(query[..., 2 * i : 2 * i + 2], positions, key[:, :, 2 * i : 2 * i + 2], value[:, :, 2 * i : 2 * i + 2], radii, 2**-0.5)[0]
        for i in range(2)
    ]
    torch.testing.assert_close(out, torch.cat(expected, -1))


def test_gradcheck_opcheck_compile():
    query, positions, key, value = _inputs(1, 3, 2, 2, 3, 3, cv=2, seed=3, grad=True)
    radii = [1, 0]
    assert torch.autograd.gradcheck(lambda q, k, v: _windowed_temporal_attn_op(q, positions, k, v, radii, 0.9), (query, key, value))
    fn = lambda q, k, v: _windowed_temporal_attn_op(q, positions, k, v, radii, 0.9, False)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (query, key, value))  # weights not kept: backward recomputes them
    torch.library.opcheck(torch.ops.vidseg.windowed_temporal_attn.default, (query, positions, key, value, radii, 0.9))
    torch.library.opcheck(torch.ops.vidseg.windowed_temporal_attn.default, (query, positions, key, value, radii, 0.9, False))
    args = [x.detach().float() for x in (query, key, value)]
    fn = lambda q, k, v: windowed_temporal_attn(q, positions, k, v, start=0, end=1) + 1  # noqa: E731
    torch.testing.assert_close(torch.compile(fn, fullgraph=True)(*args), fn(*args))


def test_flop_counter_counts_the_op():
    query, positions, key, value = _inputs(2, 4, 3, 2, 4, 4, cv=5, seed=4)
    with FlopCounterMode(display=False) as counter:
        windowed_temporal_attn(query, positions, key, value, start=0, end=1, expansion=1)
    assert counter.get_flop_counts()["Global"][torch.ops.vidseg.windowed_temporal_attn] == 2 * 2 * 4 * (9 + 1) * (3 + 5)


def test_bad_input():
    query, positions, key, value = _inputs(1, 3, 2, 2, 3, 3, cv=2, seed=5)
    with pytest.raises(DataError, match="positions must lie"):
        windowed_temporal_attn(query, positions + 9, key, value)
    with pytest.raises(DataError, match="int64"):
        windowed_temporal_attn(query, positions.int(), key, value)
    with pytest.raises(DataError, match="shapes disagree"):
        windowed_temporal_attn(query, positions, key[..., :2], value)
    with pytest.raises(DataError, match="expected query"):
        windowed_temporal_attn(query[0], positions, key, value)
    with pytest.raises(DataError, match="dtype"):
        windowed_temporal_attn(query.float(), positions, key, value)
    with pytest.raises(ConfigError, match="radius"):
        _windowed_temporal_attn_op(query, positions, key, value, [1], 1.0)
    with pytest.raises(ConfigError, match="s <= e"):
        num_temporal_keys(7, 3, 2, 1)
