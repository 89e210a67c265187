"""Freezing and BatchNorm-mode options shared by backbones."""
from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class FreezeMixin(nn.Module):
    """Adds ``freeze`` (a fixed feature extractor) and ``norm_eval`` (BatchNorm kept in eval mode).

    A frozen backbone gets no gradients *and* stays in eval mode when the matcher
    trains, so its BatchNorm running statistics and dropout do not change either:
    its features are exactly those of the pretrained network. ``norm_eval`` alone
    keeps only the BatchNorm layers in eval mode (statistics frozen, weights still
    trained), the usual choice when fine-tuning with small batches.
    """

    freeze: bool = False
    norm_eval: bool = False

    def setup_freezing(self, freeze: bool, norm_eval: bool) -> None:
        """Apply the options; call at the end of ``__init__``."""
        self.freeze = freeze
        self.norm_eval = norm_eval
        if freeze:
            self.requires_grad_(False)
            super().train(False)

    def train(self, mode: bool = True) -> 'FreezeMixin':
        """Switch modes; a frozen backbone stays in eval mode, ``norm_eval`` keeps BatchNorm there."""
        super().train(mode and not self.freeze)
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
