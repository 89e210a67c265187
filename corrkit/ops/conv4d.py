"""4D convolution and soft mutual nearest-neighbour filtering on correlation tensors."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def conv4d(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Zero-padded ("same") 4D convolution with odd kernel sizes.

    Computed as ``k1`` 3D convolutions over all ``Hs`` slices at once, each
    shifted along ``Hs`` and summed: no 4D unfolding, memory of one output.

    Args:
        x: Input ``(B, C_in, Hs, Ws, Ht, Wt)``.
        weight: Kernel ``(C_out, C_in, k1, k2, k3, k4)``, every ``k`` odd.
        bias: ``(C_out,)`` or ``None``.

    Returns:
        ``(B, C_out, Hs, Ws, Ht, Wt)``.

    Examples:
        >>> w = torch.zeros(1, 1, 3, 3, 3, 3); w[0, 0, 1, 1, 1, 1] = 2.0  # scaled identity
        >>> x = torch.rand(2, 1, 4, 5, 3, 2)
        >>> torch.equal(conv4d(x, w), 2 * x)
        True
    """
    if x.dim() != 6 or weight.dim() != 6:
        raise ValueError(f'conv4d takes a (B, C, Hs, Ws, Ht, Wt) input and a 6-D kernel, '
                         f'got {tuple(x.shape)} and {tuple(weight.shape)}')
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f'the kernel takes {weight.shape[1]} input channels, the input has '
                         f'{x.shape[1]}')
    if any(k % 2 == 0 for k in weight.shape[2:]):
        raise ValueError(f'kernel sizes must be odd, got {tuple(weight.shape[2:])}')
    b, c, hs, ws, ht, wt = x.shape
    k1 = weight.shape[2]
    pad = k1 // 2
    # every Hs slice is one 3D image: (B * Hs, C, Ws, Ht, Wt)
    slices = x.permute(0, 2, 1, 3, 4, 5).reshape(b * hs, c, ws, ht, wt)
    padding = tuple(k // 2 for k in weight.shape[3:])
    out = None
    for i in range(k1):
        y = F.conv3d(slices, weight[:, :, i], padding=padding).unflatten(0, (b, hs))
        # output slice s takes input slice s + i - pad through kernel tap i
        shift = i - pad
        lo, hi = max(0, -shift), min(hs, hs - shift)
        if lo >= hi:
            continue
        term = F.pad(y[:, lo + shift:hi + shift], (0, 0, 0, 0, 0, 0, 0, 0, lo, hs - hi))
        out = term if out is None else out + term
    if out is None:  # kernel wider than the grid on both sides: only padding is seen
        out = x.new_zeros(b, hs, weight.shape[0], ws, ht, wt)
    out = out.permute(0, 2, 1, 3, 4, 5)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1, 1, 1)
    return out.contiguous()


def mutual_nn_filter(corr: Tensor, eps: float = 1e-5) -> Tensor:
    """Soft mutual nearest-neighbour filtering (NC-Net, Rocco et al. 2018).

    Each score is multiplied by its ratios to the best score of its source cell
    and of its target cell: ``c * (c / max_t c) * (c / max_s c)``. A match that
    is the best in both directions keeps its score; others shrink. Expects
    non-negative scores (such as a clamped cosine correlation).

    Args:
        corr: ``(B, L, Hs, Ws, Ht, Wt)``, filtered per channel.
        eps: Guards the division for all-zero rows.

    Returns:
        Same shape as ``corr``.

    Examples:
        >>> c = torch.tensor([[1.0, 0.5], [0.5, 0.25]]).view(1, 1, 2, 1, 2, 1)
        >>> mutual_nn_filter(c, eps=0.0).flatten().tolist()
        [1.0, 0.25, 0.25, 0.0625]
    """
    if corr.dim() != 6:
        raise ValueError(f'mutual_nn_filter takes (B, L, Hs, Ws, Ht, Wt), got {tuple(corr.shape)}')
    best_per_source = corr.amax(dim=(4, 5), keepdim=True)
    best_per_target = corr.amax(dim=(2, 3), keepdim=True)
    return corr * (corr / (best_per_source + eps)) * (corr / (best_per_target + eps))


def swap_source_target(corr: Tensor) -> Tensor:
    """Transpose a 4D correlation: ``(B, L, Hs, Ws, Ht, Wt) -> (B, L, Ht, Wt, Hs, Ws)``."""
    return corr.permute(0, 1, 4, 5, 2, 3)
