"""4D convolution against a direct sum over kernel taps; mutual nearest-neighbour filtering."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from corrkit.layers import Conv4d
from corrkit.ops import conv4d, mutual_nn_filter, swap_source_target


def direct_conv4d(x, weight, bias):
    """Zero-padded 4D convolution written as the definition: one einsum per kernel tap."""
    k = weight.shape[2:]
    pads = [s // 2 for s in k]
    xp = F.pad(x, (pads[3], pads[3], pads[2], pads[2], pads[1], pads[1], pads[0], pads[0]))
    out = torch.zeros(x.shape[0], weight.shape[0], *x.shape[2:], dtype=x.dtype)
    h1, h2, h3, h4 = x.shape[2:]
    for a, b, c, d in itertools.product(*(range(s) for s in k)):
        window = xp[:, :, a:a + h1, b:b + h2, c:c + h3, d:d + h4]
        out += torch.einsum('bcijkl,oc->boijkl', window, weight[:, :, a, b, c, d])
    return out + bias.view(1, -1, 1, 1, 1, 1)


@pytest.mark.parametrize('kernel', [(3, 3, 3, 3), (5, 1, 3, 5), (7, 3, 1, 3)])
def test_conv4d_matches_the_definition(kernel):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 5, 3, 6, dtype=torch.float64)  # kernel 7 wider than Hs = 4
    weight = torch.randn(2, 3, *kernel, dtype=torch.float64)
    bias = torch.randn(2, dtype=torch.float64)
    torch.testing.assert_close(conv4d(x, weight, bias), direct_conv4d(x, weight, bias))


def test_conv4d_gradients():
    x = torch.randn(1, 2, 3, 3, 4, 2, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 2, 3, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, w: conv4d(a, w), (x, weight))


def test_conv4d_rejects_bad_shapes():
    with pytest.raises(ValueError, match='odd'):
        conv4d(torch.rand(1, 1, 3, 3, 3, 3), torch.rand(1, 1, 2, 3, 3, 3))
    with pytest.raises(ValueError, match='input channels'):
        conv4d(torch.rand(1, 2, 3, 3, 3, 3), torch.rand(1, 1, 3, 3, 3, 3))
    with pytest.raises(ValueError, match='kernel_size'):
        Conv4d(1, 1, kernel_size=(3, 3, 4, 3))


def test_conv4d_layer_initialises_like_conv3d():
    torch.manual_seed(0)
    conv = Conv4d(4, 8, kernel_size=3)
    bound = 1 / (4 * 81) ** 0.5  # kaiming_uniform(a=sqrt(5)) bound = 1 / sqrt(fan_in)
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
    assert conv(torch.rand(1, 4, 3, 3, 3, 3)).shape == (1, 8, 3, 3, 3, 3)


def test_mutual_filter_keeps_mutual_best_matches_and_shrinks_others():
    torch.manual_seed(0)
    corr = torch.rand(2, 3, 3, 4, 4, 3)
    out = mutual_nn_filter(corr, eps=0.0)
    assert out.shape == corr.shape and (out <= corr + 1e-7).all()
    best_t = corr == corr.amax(dim=(4, 5), keepdim=True)
    best_s = corr == corr.amax(dim=(2, 3), keepdim=True)
    mutual = best_t & best_s
    assert mutual.any()
    torch.testing.assert_close(out[mutual], corr[mutual])
    assert (out[~mutual] < corr[~mutual]).all()
    # symmetric in source and target
    torch.testing.assert_close(swap_source_target(mutual_nn_filter(swap_source_target(corr))),
                               mutual_nn_filter(corr))
