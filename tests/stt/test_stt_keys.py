"""STT Table 3: the key size of every (s, e, ε) row, from the model's own configuration (T = 7, docs/reference/vss.md §1.3)."""

from __future__ import annotations

import pytest
import torch

from vidseg_common.ops.windowed_temporal_attn import windowed_temporal_attn
from vidseg_stt.stt import SparseTemporalTransformer

# (s, e, ε) → key size printed in STT Table 3
TABLE3 = [((1, 5, 1), 527), ((2, 5, 1), 639), ((3, 5, 1), 735), ((1, 3, 1), 279), ((1, 7, 1), 679),
          ((1, 5, 2), 663), ((1, 5, 3), 695)]


@pytest.mark.parametrize(("config", "expected"), TABLE3)
def test_table3_key_size(config: tuple[int, int, int], expected: int) -> None:
    s, e, eps = config
    stt = SparseTemporalTransformer(in_channels=64, reduction=4, num_heads=4, key_start=s, key_end=e,
                                    key_expansion=eps, num_key_frames=7)
    assert stt.num_keys(64, 128) == expected
    # the attention the block actually runs scores exactly that many slots per query
    d, h, w = stt.dim, 2 * e + 3, 2 * e + 3
    key = torch.randn(1, 7, d, h, w)
    positions = torch.tensor([[(h // 2) * w + w // 2]])
    _, weights = windowed_temporal_attn(torch.randn(1, 1, d), positions, key, key, start=s, end=e, expansion=eps,
                                        num_heads=stt.num_heads, return_weights=True)
    assert weights.shape[-1] == expected
    assert int((weights[0, 0, 0] > 0).sum()) == expected  # a centred query: every window slot inside the map


def test_full_attention_key_size() -> None:
    """Table 3's full-key row: 57 344 = 7 frames × a 64×128 key map."""
    stt = SparseTemporalTransformer(in_channels=64, num_heads=4, num_key_frames=7, full_attention=True)
    assert stt.num_keys(64, 128) == 57344


def test_windows_covering_the_map_equal_full_attention() -> None:
    """With windows larger than the map (s = e ≥ map size) the sparse block equals full attention."""
    torch.manual_seed(0)
    sparse = SparseTemporalTransformer(in_channels=32, reduction=2, num_heads=2, nsm_radius=1, key_start=8,
                                       key_end=8, key_expansion=0, num_key_frames=3, zero_init=False).eval()
    full = SparseTemporalTransformer(in_channels=32, reduction=2, num_heads=2, nsm_radius=1, num_key_frames=3,
                                     full_attention=True, zero_init=False).eval()
    full.load_state_dict(sparse.state_dict())
    query = torch.randn(2, 32, 5, 6)
    key, value = sparse.memory(torch.randn(6, 32, 5, 6))
    key, value = key.reshape(2, 3, -1, 5, 6), value.reshape(2, 3, -1, 5, 6)
    out = sparse(query, key, value)
    torch.testing.assert_close(out, full(query, key, value), rtol=1e-5, atol=1e-5)
    changed = (out - query).abs().sum(1) > 0
    assert int(changed.sum()) == 2 * 15  # top 50 % of the 30 positions are refined, the rest pass through
