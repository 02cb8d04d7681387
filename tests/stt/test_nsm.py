"""NSM query selection (STT Eqs. 1–4): a brute-force reference and the two-region toy map."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidseg_common.errors import ConfigError
from vidseg_stt.nsm import nsm_scores, select_top


def brute_force_nsm(x: torch.Tensor, r: int) -> torch.Tensor:
    """Eqs. 1–4 written literally with an unfold of every neighbourhood (replicate padding)."""
    b, c, h, w = x.shape
    n_b = (2 * r + 1) ** 2
    neighbours = F.unfold(F.pad(x, (r, r, r, r), mode="replicate"), 2 * r + 1).reshape(b, c, n_b, h, w)
    centre = x.unsqueeze(2)
    p_sim = torch.softmax((neighbours * centre).sum(1), dim=1)  # Eq. 1, over the n_b neighbours
    p_u = torch.full_like(p_sim, 1.0 / n_b)
    kl = (p_u * (p_u.log() - p_sim.log())).sum(1)  # Eq. 2, sign as KL(p_u ‖ p_sim) ≥ 0
    cos = F.cosine_similarity(neighbours, centre.expand_as(neighbours), dim=1)
    return kl + (1 - cos).mean(1)  # Eqs. 3, 4


@pytest.mark.parametrize("radius", [0, 1, 2])
def test_matches_brute_force(radius: int) -> None:
    x = torch.randn(2, 6, 7, 9, dtype=torch.float64) * 0.7
    torch.testing.assert_close(nsm_scores(x, radius).double(), brute_force_nsm(x, radius), rtol=1e-5, atol=1e-5)


def test_two_region_map_selects_the_boundary() -> None:
    """Left half one feature vector, right half another: the selected queries are the boundary band."""
    h, w, r = 8, 12, 1
    a, b = torch.tensor([1.0, 0.0, 0.5]), torch.tensor([0.0, 1.0, -0.5])
    x = torch.where(torch.arange(w).view(1, 1, 1, w) < w // 2, a.view(1, 3, 1, 1), b.view(1, 3, 1, 1)).expand(1, 3, h, w)
    scores = nsm_scores(x, r)
    # uniform neighbourhood: p_sim is uniform (KL 0) and every cosine is 1, so D_NSM = 0 exactly
    assert torch.allclose(scores[0, :, : w // 2 - r], torch.zeros(()), atol=1e-6)
    assert torch.allclose(scores[0, :, w // 2 + r:], torch.zeros(()), atol=1e-6)
    assert bool((scores[0, :, w // 2 - r: w // 2 + r] > 0.1).all())
    positions = select_top(scores, 2 * r * h / (h * w))  # as many queries as boundary-band positions
    cols = positions[0] % w
    assert set(cols.tolist()) == {w // 2 - 1, w // 2}
    assert positions.shape == (1, 2 * r * h) and bool((positions[0].diff() > 0).all())


def test_bad_ratio_and_radius() -> None:
    with pytest.raises(ConfigError, match="ratio"):
        select_top(torch.zeros(1, 2, 2), 1.5)
    with pytest.raises(ConfigError, match="radius"):
        nsm_scores(torch.zeros(1, 1, 2, 2), -1)
