"""The 4D rotary position embedding as a module with a per-grid cache."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..ops import grid_positions_4d, rope_4d_angles, rotate_pairs


#: dtypes rotated as complex numbers in eager mode.
_COMPLEX = (torch.float32, torch.float64)


class Rotary4D(nn.Module):
    """Rotates token features by their 4D match position ``(ys, xs, yt, xt)``.

    See :mod:`corrkit.ops.rotary` for how rotation pairs encode the four axes.
    Cosines and sines are cached per grid, device and dtype; the module has no
    parameters.

    Args:
        dims: Feature size to rotate (even, at least 8).
        base: Frequency ladder base.

    Shape:
        - x: ``(B, T, dims)`` with ``T = Hs * Ws * Ht * Wt``
        - output: ``(B, T, dims)``

    Examples:
        >>> rope = Rotary4D(8)
        >>> rope(torch.randn(2, 16, 8), (2, 2, 2, 2)).shape
        torch.Size([2, 16, 8])
    """

    def __init__(self, dims: int, base: float = 100.0):
        super().__init__()
        rope_4d_angles(torch.zeros(1, 4), dims, base)  # validates dims early
        self.dims = dims
        self.base = base
        self._cache: dict[tuple, tuple[Tensor, Tensor]] = {}
        self._lane_cache: tuple[tuple, Tensor] | None = None

    def cos_sin(self, grid: tuple[int, int, int, int], device: torch.device,
                dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """Cached ``(cos, sin)`` of shape ``(T, dims / 2)`` for a 4D grid."""
        return self._table(grid, device, dtype).unbind(-1)

    def _table(self, grid: tuple[int, int, int, int], device: torch.device,
               dtype: torch.dtype) -> Tensor:
        """Stacked cosines and sines ``(T, dims / 2, 2)``, cached for the last grid."""
        # tensors made under inference_mode cannot be saved for backward later (dynamo
        # cannot read the mode, and a compiled graph makes its own tables anyway)
        inference = not torch.compiler.is_compiling() and torch.is_inference_mode_enabled()
        key = (tuple(grid), device, dtype, inference)
        if key not in self._cache:
            # angles in float64 so that large positions keep their precision
            pos = grid_positions_4d(*grid, device=device, dtype=torch.float64)
            angles = rope_4d_angles(pos, self.dims, self.base)
            self._cache = {key: torch.stack((angles.cos(), angles.sin()), dim=-1).to(dtype)}
        return self._cache[key]

    def lane_table(self, grid: tuple[int, int, int, int], lanes: int) -> Tensor:
        """The float32 CPU table for a kernel that holds ``lanes`` tokens per vector
        (:mod:`corrkit.layers.fused`): ``(ceil(T / lanes), dims / 2, 2, lanes)``, per tile
        of ``lanes`` tokens and rotation pair the cosines, then the sines; zeros past the
        last token. Cached for the last grid."""
        key = (tuple(grid), lanes)
        cached = self._lane_cache  # one (key, table) pair, replaced whole: thread-safe reads
        if cached is None or cached[0] != key:
            table = self._table(grid, torch.device('cpu'), torch.float32)
            tiles = -(-table.shape[0] // lanes)
            padded = table.new_zeros(tiles * lanes, *table.shape[1:])
            padded[:table.shape[0]] = table
            cached = (key, padded.view(tiles, lanes, -1, 2).permute(0, 2, 3, 1).contiguous())
            self._lane_cache = cached
        return cached[1]

    def forward(self, x: Tensor, grid: tuple[int, int, int, int],
                rows: slice | None = None) -> Tensor:
        """Rotate ``x`` whose tokens are the flattened ``grid``, or its tokens ``rows``
        (a chunk of a cache-blocked pass)."""
        table = self._table(grid, x.device, x.dtype)
        if rows is not None:
            table = table[rows]
        if x.shape[-2] != table.shape[0]:
            raise ValueError(f'{x.shape[-2]} tokens do not match the 4D grid {tuple(grid)}'
                             + (f' rows {rows.start}:{rows.stop}' if rows is not None else ''))
        # complex32 lacks CPU kernels, and inductor fuses the real form but generates
        # no code for complex products
        if x.dtype not in _COMPLEX or torch.compiler.is_compiling():
            return rotate_pairs(x, *table.unbind(-1))
        if x.stride(-1) != 1 or any(stride % 2 for stride in x.stride()[:-1]):
            x = x.contiguous()  # view_as_complex needs (real, imag) next to each other
        # one complex product per pair (x[2g] + i x[2g+1]) · exp(iθ): a single pass
        # over x instead of the slices, products and stack of rotate_pairs
        pairs = torch.view_as_complex(x.unflatten(-1, (-1, 2)))
        return torch.view_as_real(pairs * torch.view_as_complex(table)).flatten(-2)

    def extra_repr(self) -> str:
        return f'dims={self.dims}, base={self.base}'
