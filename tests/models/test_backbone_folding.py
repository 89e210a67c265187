"""BatchNorm folded into convolutions at a backbone's inference: the same features, only
where that is exact, rebuilt when weights change, refused where the layers do not fold."""
import copy

import pytest
import torch
from torch import nn

from corrkit.models.backbones import TimmHypercolumnBackbone, TorchvisionHypercolumnBackbone
from corrkit.models.backbones.folding import BatchNormFolding, fold_batchnorm


def with_statistics(backbone: nn.Module, seed: int = 0) -> nn.Module:
    """Running statistics and affine weights away from their initial values, so a wrong
    fold shows."""
    generator = torch.Generator().manual_seed(seed)
    for m in backbone.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=generator) - 0.5)
    return backbone


def plain(backbone: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """The features without folding: a gradient is wanted, so the plain network runs."""
    with torch.enable_grad():
        return [f.detach() for f in backbone(images)]


def assert_same(folded, reference):
    assert len(folded) == len(reference)
    for a, b in zip(folded, reference):
        torch.testing.assert_close(a, b, atol=1e-5 * float(b.abs().max()), rtol=1e-4)


@pytest.mark.parametrize('build', [
    lambda: TimmHypercolumnBackbone('test_resnet', taps=(2, 3)),
    lambda: TorchvisionHypercolumnBackbone('mobilenet_v2', taps=['features.7', 'features.14'],
                                           pretrained=False),
], ids=['timm', 'torchvision'])
def test_inference_folds_and_gives_the_same_features(build):
    torch.manual_seed(0)
    backbone = with_statistics(build()).eval()
    backbone.prepare_inference()
    keys = list(backbone.state_dict())
    images = torch.randn(2, 3, 64, 64)
    reference = plain(backbone, images)
    with torch.inference_mode():
        folded = backbone(images)
    assert backbone.batchnorm_folding.folded_pairs > 0
    assert_same(folded, reference)
    assert list(backbone.state_dict()) == keys  # the copy is not part of the model's state
    backbone.to(memory_format=torch.channels_last)  # .to() drops the copy and the folding
    assert not backbone.batchnorm_folding.enabled
    backbone.fold_batchnorm()
    with torch.no_grad():
        assert_same(backbone(images.contiguous(memory_format=torch.channels_last)), reference)


def test_training_and_gradients_run_the_network_itself():
    torch.manual_seed(0)
    backbone = with_statistics(TimmHypercolumnBackbone('test_resnet', taps=(2, 3)))
    images = torch.randn(2, 3, 64, 64)
    backbone.fold_batchnorm()
    folding = backbone.batchnorm_folding
    assert not folding.applies()  # training mode
    backbone.eval()
    assert not folding.applies()  # a gradient is wanted for the weights
    with torch.no_grad():
        assert folding.applies()
    backbone.requires_grad_(False)  # a frozen backbone while the rest trains
    assert folding.applies()
    out = backbone(images.requires_grad_())
    out[-1].sum().backward()  # the gradient still reaches the images
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_changed_weights_are_folded_again():
    torch.manual_seed(0)
    backbone = with_statistics(TimmHypercolumnBackbone('test_resnet', taps=(2, 3))).eval()
    backbone.fold_batchnorm()
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = backbone(images)
    other = with_statistics(copy.deepcopy(backbone), seed=1)
    backbone.load_state_dict(other.state_dict())  # in place: the versions change
    with torch.no_grad():
        after = backbone(images)
    assert_same(after, plain(backbone, images))
    assert (after[-1] - before[-1]).abs().max() > 1e-3


class Misordered(nn.Module):
    """A BatchNorm registered right after a convolution it does not follow."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.other = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x) + self.norm(self.other(x))


def test_a_network_that_does_not_fold_runs_as_it_is():
    torch.manual_seed(0)
    net = with_statistics(Misordered()).eval()
    assert fold_batchnorm(net)[1] == 1  # registration order alone would fold it
    folding = BatchNormFolding(net, lambda module, x: module(x))
    folding.enable()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        out = folding(x)
    assert folding.folded is None and folding.folded_pairs == 0  # the probe disagreed
    assert torch.equal(out, net(x))


def test_a_flop_counter_sees_one_backbone_and_no_probe():
    from torch.utils.flop_counter import FlopCounterMode
    torch.manual_seed(0)
    backbone = TimmHypercolumnBackbone('test_resnet', taps=(2, 3)).eval()
    backbone.fold_batchnorm()
    images = torch.randn(2, 3, 64, 64)

    def flops():
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            backbone(images)
        return counter.get_total_flops()

    first = flops()  # not built under the counter: the network itself runs
    assert backbone.batchnorm_folding.folded is None
    with torch.no_grad():
        backbone(images)  # built here
    assert backbone.batchnorm_folding.folded is not None and flops() == first


def test_hooks_training_autocast_and_copies():
    torch.manual_seed(0)
    backbone = with_statistics(TimmHypercolumnBackbone('test_resnet', taps=(2, 3))).eval()
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        backbone(images)
    assert backbone.batchnorm_folding.folded is None  # not asked for: nothing folded
    backbone.fold_batchnorm()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        backbone(images)  # the probe runs in full precision: a bf16 first call folds
    assert backbone.batchnorm_folding.folded_pairs > 0
    seen = []
    handle = backbone.stages[-1][-1].register_forward_hook(lambda *args: seen.append(1))
    with torch.no_grad():
        backbone(images)
    assert seen == [1]  # a hooked network runs itself, once, without a probe
    handle.remove()
    copied = copy.deepcopy(backbone)
    assert copied.batchnorm_folding.folded is None and copied.batchnorm_folding.enabled
    backbone.stages = copied.stages  # replaced modules: a new helper, not the old copy
    assert backbone.batchnorm_folding.network[1] is copied.stages
    backbone.train()
    assert not backbone.batchnorm_folding.enabled
