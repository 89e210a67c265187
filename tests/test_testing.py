"""corrkit.testing catches each way a component can break its contract, and names the class;
a forgotten declared attribute fails when the component is built."""
import inspect

import pytest
import torch
from torch import nn

from corrkit.errors import ContractError
from corrkit.layers import Attention, SoftmaxAttention
from corrkit.models.base import Backbone, FlowHead, FlowPrediction, Refiner
from corrkit.models.heads import KernelSoftArgmaxHead
from corrkit.models.losses import KeypointL2Loss
from corrkit.models.refiners import MeanRefiner
from corrkit.testing import (check_attention, check_backbone, check_head, check_loss,
                             check_refiner)


class ScaledRefiner(Refiner):
    """A correct refiner that subclasses override to break one rule each."""

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = 1
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, corr):
        return self.scale * corr.mean(1, keepdim=True)


class AllChannelsRefiner(ScaledRefiner):
    def forward(self, corr):  # L channels where out_channels says 1
        return self.scale * corr


class Float32Refiner(ScaledRefiner):
    def forward(self, corr):
        return super().forward(corr).float()


class NaNRefiner(ScaledRefiner):
    def forward(self, corr):
        return super().forward(corr) / 0 * 0


class UnusedParameterRefiner(ScaledRefiner):
    def __init__(self, in_channels: int = 3):
        super().__init__(in_channels)
        self.unused = nn.Linear(2, 2)


class DetachedRefiner(ScaledRefiner):
    def forward(self, corr):
        return super().forward(corr).detach()


class BadKernelsRefiner(ScaledRefiner):
    def convolution_kernels(self):  # a scalar is no (C_out, C_in, *kernel_size) kernel
        return [self.scale]


def test_a_correct_refiner_passes_and_is_left_unchanged():
    refiner = ScaledRefiner()
    check_refiner(refiner)
    assert refiner.scale.dtype == torch.float32 and refiner.scale.grad is None


@pytest.mark.parametrize('refiner, message', [
    (AllChannelsRefiner(), r"AllChannelsRefiner \(.*\) breaks the Refiner contract: expected "
                           r"shape \(B=2, L'=1, .*\), got \(2, 3, 3, 4, 2, 3\)"),
    (Float32Refiner(), r'Float32Refiner .* output dtype torch.float32 does not follow the input '
                       r'dtype torch.float64'),
    (NaNRefiner(), r'NaNRefiner .* NaN or infinite'),
    (UnusedParameterRefiner(), r"UnusedParameterRefiner .* no gradient reaches parameter "
                               r"'unused.weight'"),
    (DetachedRefiner(), r'DetachedRefiner .* no gradient reaches'),
    (BadKernelsRefiner(), r'BadKernelsRefiner .* convolution_kernels\(\) returned \(\), not a '
                          r'kernel'),
])
def test_check_refiner_names_the_class_and_what_broke(refiner, message):
    with pytest.raises(ContractError, match=message):
        check_refiner(refiner)


def test_a_module_of_another_role_is_refused():
    with pytest.raises(ContractError, match=r'KernelSoftArgmaxHead .* is not a '
                                            r'corrkit.models.base.Refiner'):
        check_refiner(KernelSoftArgmaxHead(), in_channels=1)
    with pytest.raises(ContractError, match=r'Conv2d .* is not a corrkit.models.base.Backbone'):
        check_backbone(nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match='dtypes is empty'):
        check_refiner(ScaledRefiner(), dtypes=())


def test_forgotten_declared_attributes_fail_at_build():
    class NoStridesBackbone(Backbone):
        def __init__(self):
            super().__init__()
            self.out_channels = [3]

        def forward(self, images):
            return [images]

    class NoOutChannelsRefiner(Refiner):
        def __init__(self, in_channels: int):
            super().__init__()
            self.in_channels = in_channels

        def forward(self, corr):
            return corr

    class NoFactorHead(FlowHead):
        def forward(self, corr):
            raise NotImplementedError

    with pytest.raises(ContractError, match=r"NoStridesBackbone \(.*\) breaks the Backbone "
                                            r"contract: .*declared attribute 'strides'"):
        NoStridesBackbone()
    with pytest.raises(ContractError, match=r"NoOutChannelsRefiner .* Refiner contract: .*"
                                            r"'out_channels'"):
        NoOutChannelsRefiner(in_channels=3)
    with pytest.raises(ContractError, match=r"NoFactorHead .* 'upsample_factor'"):
        NoFactorHead()


def test_declared_attributes_keep_the_constructor_schema():
    """The build-time check wraps construction; the registry still reads the real arguments."""
    assert list(inspect.signature(MeanRefiner).parameters) == ['in_channels']
    assert 'max_score_bytes' in inspect.signature(SoftmaxAttention).parameters
    assert MeanRefiner(in_channels=2).out_channels == 1


def test_check_backbone_counts_the_maps():
    class OneMapShortBackbone(Backbone):
        def __init__(self):
            super().__init__()
            self.out_channels, self.strides = [3, 3], [1, 2]
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, images):
            return [self.conv(images)]

    with pytest.raises(ContractError, match='OneMapShortBackbone .* expected a list of 2 '
                                            'feature maps, got 1'):
        check_backbone(OneMapShortBackbone())


def test_check_head_wants_probabilities_that_sum_to_one():
    class UnnormalisedHead(FlowHead):
        def __init__(self):
            super().__init__()
            self.upsample_factor = 1
            self.inner = KernelSoftArgmaxHead(upsample_factor=1)

        def forward(self, corr):
            pred = self.inner(corr)
            return FlowPrediction(pred.flow, pred.probs * 2)

    check_head(KernelSoftArgmaxHead(upsample_factor=2))
    with pytest.raises(ContractError, match='UnnormalisedHead .* sum to 2 .. 2 over target'):
        check_head(UnnormalisedHead())


def test_check_attention_and_check_loss():
    class ShrinkingAttention(Attention):
        def __init__(self):
            super().__init__()
            self.embed_dims = 8
            self.proj = nn.Linear(8, 4)

        def forward(self, x, grid):
            return self.proj(x)

    class LeakyLoss(KeypointL2Loss):
        def forward(self, pred, target, valid):  # ignores the mask
            return (pred - target).square().mean()

    check_attention(SoftmaxAttention(8, num_heads=2, head_dims=4))
    with pytest.raises(ContractError, match=r'ShrinkingAttention .* Attention contract: expected '
                                            r'shape \(B=2, T=16, D=8\), got \(2, 16, 4\)'):
        check_attention(ShrinkingAttention())
    check_loss(KeypointL2Loss())
    with pytest.raises(ContractError, match='LeakyLoss .* masked keypoints get a gradient'):
        check_loss(LeakyLoss())
