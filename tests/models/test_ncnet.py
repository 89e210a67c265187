"""NC-Net refiner: symmetric in source and target, local, and trainable."""
import torch

from corrkit.models.refiners import NCNetRefiner
from corrkit.ops import swap_source_target


def test_swapping_source_and_target_transposes_the_output():
    torch.manual_seed(0)
    refiner = NCNetRefiner(in_channels=2, channels=(4, 1), kernel_sizes=(3, 3)).double()
    corr = torch.rand(2, 2, 4, 3, 5, 2, dtype=torch.float64)
    out = refiner(corr)
    torch.testing.assert_close(refiner(swap_source_target(corr)), swap_source_target(out))


def test_asymmetric_variant_is_not_symmetric():
    torch.manual_seed(0)
    refiner = NCNetRefiner(in_channels=1, channels=(4, 1), kernel_sizes=(3, 3), symmetric=False,
                           mutual_before=False, mutual_after=False).double()
    corr = torch.rand(1, 1, 4, 4, 4, 4, dtype=torch.float64)
    assert not torch.allclose(refiner(swap_source_target(corr)),
                              swap_source_target(refiner(corr)))


def test_receptive_field_is_the_stacked_kernels():
    """Two 3^4 layers see 2 cells each way: a change at distance 3 leaves a match untouched."""
    torch.manual_seed(0)
    refiner = NCNetRefiner(in_channels=1, channels=(4, 1), kernel_sizes=(3, 3), symmetric=False,
                           mutual_before=False, mutual_after=False).double()
    corr = torch.rand(1, 1, 7, 1, 1, 1, dtype=torch.float64)
    bumped = corr.clone()
    bumped[0, 0, 6] += 1.0
    out, out_bumped = refiner(corr), refiner(bumped)
    assert torch.equal(out[0, 0, :4], out_bumped[0, 0, :4])


def test_gradients_reach_every_layer():
    torch.manual_seed(0)
    refiner = NCNetRefiner(in_channels=3, channels=(4, 4, 1), kernel_sizes=(3, 3, 3))
    refiner(torch.rand(1, 3, 4, 4, 4, 4)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in refiner.parameters())
