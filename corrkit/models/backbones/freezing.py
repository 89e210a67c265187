"""Freezing and BatchNorm-mode options shared by backbones."""
from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class FreezeMixin(nn.Module):
    """Adds ``freeze`` (no gradients) and ``norm_eval`` (BatchNorm kept in eval mode)."""

    freeze: bool = False
    norm_eval: bool = False

    def setup_freezing(self, freeze: bool, norm_eval: bool) -> None:
        """Apply the options; call at the end of ``__init__``."""
        self.freeze = freeze
        self.norm_eval = norm_eval
        if freeze:
            self.requires_grad_(False)

    def train(self, mode: bool = True) -> 'FreezeMixin':
        """Switch modes, keeping BatchNorm layers in eval mode when ``norm_eval`` is set."""
        super().train(mode)
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
