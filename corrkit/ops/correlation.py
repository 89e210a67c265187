"""Dense 4D correlation between two feature maps."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor


def cosine_correlation_4d(src: Tensor, trg: Tensor, eps: float = 1e-5) -> Tensor:
    """Cosine similarity between every source and every target position.

    Args:
        src: Source features.
        trg: Target features, with the same channels as ``src``.
        eps: Added to feature norms so that all-zero features give zero scores.

    Returns:
        ``corr[b, ys, xs, yt, xt]``: cosine of the angle between
        ``src[b, :, ys, xs]`` and ``trg[b, :, yt, xt]``, in ``[-1, 1]``.

    Shape:
        - src: ``(B, C, Hs, Ws)``
        - trg: ``(B, C, Ht, Wt)``
        - output: ``(B, Hs, Ws, Ht, Wt)``

    Raises:
        ValueError: If batch or channel sizes differ.

    Examples:
        >>> feats = torch.randn(2, 8, 3, 4)
        >>> corr = cosine_correlation_4d(feats, feats)
        >>> corr.shape
        torch.Size([2, 3, 4, 3, 4])
        >>> bool(torch.allclose(corr[0, 1, 2, 1, 2], torch.tensor(1.0), atol=1e-4))
        True
    """
    if src.shape[:2] != trg.shape[:2]:
        raise ValueError(f'source features {tuple(src.shape)} and target features '
                         f'{tuple(trg.shape)} must agree in batch and channel sizes')
    hs, ws = src.shape[-2:]
    ht, wt = trg.shape[-2:]
    src = src / (src.norm(dim=1, keepdim=True) + eps)
    trg = trg / (trg.norm(dim=1, keepdim=True) + eps)
    corr = torch.bmm(rearrange(src, 'b c h w -> b (h w) c'), rearrange(trg, 'b c h w -> b c (h w)'))
    return rearrange(corr, 'b (hs ws) (ht wt) -> b hs ws ht wt', hs=hs, ws=ws, ht=ht, wt=wt)


def resize_features(feats: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of a feature map with ``align_corners=True``; no-op at the same size.

    Args:
        feats: Feature map.
        size: Target ``(H, W)``.

    Returns:
        The resized map.

    Shape:
        - feats: ``(N, C, H, W)``
        - output: ``(N, C, size[0], size[1])``
    """
    if tuple(feats.shape[-2:]) == tuple(size):
        return feats
    return F.interpolate(feats, size=size, mode='bilinear', align_corners=True)
