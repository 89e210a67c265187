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


def rectified_cosine_scores(src: Tensor, trg: Tensor, eps: float = 1e-5,
                            raw: tuple[bool, bool] = (True, True)) -> Tensor:
    """``ReLU`` of the cosine of every source row with every target row, as one product.

    The rows are never divided by their norms: the product of the raw rows is
    scaled by the inverse norms of its rows and columns, and a hand-written
    backward gives each side's gradient as one product plus one pass over its
    rows (autograd's own, through the norms, wrote four passes per side). It
    gives first derivatives only.

    A row ``x`` of norm ``n`` is divided by ``n + eps · max(n, eps)`` where its
    ``raw`` flag is set (``F.normalize`` with ``eps``, then ``x / (|x| + eps)``:
    the normalise–resize–normalise definition where no resize happens), and by
    ``n + eps`` otherwise (rows already normalised and resized).

    Args:
        src: Source rows.
        trg: Target rows, with the same channels.
        eps: As above.
        raw: Whether the source and the target rows are raw.

    Returns:
        ``max(0, ⟨src_i, trg_j⟩ / (d(|src_i|) d(|trg_j|)))``.

    Shape:
        - src: ``(B, Ns, C)``
        - trg: ``(B, Nt, C)``
        - output: ``(B, Ns, Nt)``

    Examples:
        >>> rows = torch.randn(2, 5, 8)
        >>> scores = rectified_cosine_scores(rows, rows)
        >>> bool(torch.allclose(scores.diagonal(dim1=1, dim2=2), torch.ones(2, 5), atol=1e-4))
        True
    """
    if src.shape[0] != trg.shape[0] or src.shape[-1] != trg.shape[-1]:
        raise ValueError(f'source rows {tuple(src.shape)} and target rows {tuple(trg.shape)} '
                         f'must agree in batch and channel sizes')
    return _RectifiedCosine.apply(src, trg, eps, tuple(raw))


def _inverse_norm(rows: Tensor, eps: float, raw: bool) -> tuple[Tensor, Tensor]:
    """``(n, 1 / d(n))`` per row (:func:`rectified_cosine_scores`)."""
    n = torch.linalg.vector_norm(rows, dim=-1)
    return n, 1 / (n + eps * n.clamp(min=eps) if raw else n + eps)


def _norm_term(n: Tensor, scale: Tensor, weighted: Tensor, eps: float, raw: bool) -> Tensor:
    """Per row, the factor of the row in its gradient through its own norm,
    ``∂L/∂s · s'(n) / n`` with ``s = 1 / d(n)``, ``s' = -s² d'(n)``, from
    ``weighted = ∂L/∂s · s``; 0 for zero rows."""
    slope = 1 + eps * (n > eps).to(n.dtype) if raw else torch.ones_like(n)
    return torch.where(n > 0, -weighted * scale * slope / n.clamp(min=torch.finfo(n.dtype).tiny),
                       torch.zeros_like(n))


class _RectifiedCosine(torch.autograd.Function):
    """:func:`rectified_cosine_scores` with its backward written out.

    With ``G`` the output's gradient where the scores are positive, ``c`` the
    scores, ``s``, ``t`` the inverse norms: ``H = G ⊙ s tᵀ``, ``∂L/∂src = H trg +
    w ⊙ src`` with ``w_i = -(Σ_j G_ij c_ij) s_i d'(n_i) / n_i``, and likewise
    for the target with ``Hᵀ``.
    """

    @staticmethod
    def forward(ctx, src: Tensor, trg: Tensor, eps: float, raw: tuple[bool, bool]) -> Tensor:
        n_src, s = _inverse_norm(src, eps, raw[0])
        n_trg, t = _inverse_norm(trg, eps, raw[1])
        scores = torch.bmm(src, trg.mT).mul_(s[:, :, None]).mul_(t[:, None, :]).clamp_(min=0)
        ctx.save_for_backward(src, trg, n_src, s, n_trg, t, scores)
        ctx.eps, ctx.raw = eps, raw
        return scores

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        src, trg, n_src, s, n_trg, t, scores = ctx.saved_tensors
        grad = grad.masked_fill(scores <= 0, 0)
        # its row sums are ∂L/∂s_i · s_i, its column sums ∂L/∂t_j · t_j
        weighted = grad * scores
        h = grad.mul_(s[:, :, None]).mul_(t[:, None, :])
        grad_src = grad_trg = None
        if ctx.needs_input_grad[0]:
            w = _norm_term(n_src, s, weighted.sum(-1), ctx.eps, ctx.raw[0])
            grad_src = torch.bmm(h, trg).addcmul_(src, w[:, :, None])
        if ctx.needs_input_grad[1]:
            w = _norm_term(n_trg, t, weighted.sum(-2), ctx.eps, ctx.raw[1])
            grad_trg = torch.bmm(h.mT, src).addcmul_(trg, w[:, :, None])
        return grad_src, grad_trg, None, None


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
