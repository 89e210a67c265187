"""Token-wise feed-forward block."""
from __future__ import annotations

from torch import Tensor, nn


class Mlp(nn.Module):
    """``Linear → GELU → Linear`` applied to every token.

    Args:
        dims: Input and output size.
        hidden_dims: Hidden size.

    Shape:
        - x: ``(..., dims)``
        - output: ``(..., dims)``
    """

    def __init__(self, dims: int, hidden_dims: int):
        super().__init__()
        self.fc1 = nn.Linear(dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, dims)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))
