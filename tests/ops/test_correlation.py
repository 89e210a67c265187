import torch
import torch.nn.functional as F

from corrkit.ops import cosine_correlation_4d


def test_matches_explicit_cosine():
    src, trg = torch.randn(2, 5, 3, 4), torch.randn(2, 5, 2, 6)
    corr = cosine_correlation_4d(src, trg)
    assert corr.shape == (2, 3, 4, 2, 6)
    expected = F.cosine_similarity(src[1, :, 2, 3], trg[1, :, 1, 5], dim=0)
    torch.testing.assert_close(corr[1, 2, 3, 1, 5], expected, atol=1e-5, rtol=1e-5)
    assert corr.abs().max() <= 1 + 1e-6


def test_zero_features_give_zero_scores():
    src = torch.zeros(1, 4, 2, 2)
    assert cosine_correlation_4d(src, torch.randn(1, 4, 2, 2)).abs().max() == 0


def test_mismatched_channels_raise():
    import pytest
    with pytest.raises(ValueError, match='channel'):
        cosine_correlation_4d(torch.randn(1, 4, 2, 2), torch.randn(1, 5, 2, 2))
