"""The kernel floor's recording, subtraction and replay (not the times they give)."""
from collections import Counter

import torch
from torch import nn

from corrkit.analysis.benchmark import random_pairs
import pytest

from corrkit.analysis.kernel_floor import (KernelReplay, ReplayTooLarge, TIERS, _loose,
                                           _without, kernel_replays, record_kernels,
                                           replay_bytes)


def names(calls: Counter) -> Counter:
    """Operator name → count."""
    out = Counter()
    for (func, _, _), n in calls.items():
        out[func.overloadpacket.__name__] += n
    return out


def test_composite_operators_are_recorded_as_the_kernels_they_run_in_every_mode():
    layer, x = nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 16), nn.GELU()), torch.randn(5, 8)
    with torch.inference_mode():  # linear and layer_norm reach the recorder undecomposed
        inference = record_kernels(lambda: layer(x))
    with torch.no_grad():
        plain = record_kernels(lambda: layer(x))
    assert names(inference) == names(plain) == Counter(native_layer_norm=1, addmm=1, gelu=1)


def test_backward_kernels_are_recorded():
    layer, x = nn.Linear(8, 16), torch.randn(5, 8, requires_grad=True)
    calls = names(record_kernels(lambda: torch.nn.functional.gelu(layer(x)).sum().backward()))
    assert calls['gelu_backward'] == 1 and calls['mm'] == 2  # input and weight gradients


def test_a_reference_kernel_cancels_one_of_the_same_shapes_whatever_its_layout():
    a, b = torch.randn(6, 4), torch.randn(4, 6)
    a_t = a.T.contiguous().T  # a's shape, column-major
    calls = record_kernels(lambda: (a @ b, a @ b, a_t @ b, b @ a))
    reference = record_kernels(lambda: a @ b)
    assert sum(calls.values()) == 4 and len(calls) == 3  # a transposed input is its own key
    left = _without(calls, reference)
    assert sum(left.values()) == 3  # one of the (6, 4) @ (4, 6) products cancelled
    assert _without(calls, calls) == Counter()
    # the stride-free key of the transposed product equals the contiguous one's
    assert len({_loose(key) for key in calls}) == 2


def test_a_replay_runs_the_recorded_kernels_on_the_recorded_layouts():
    a = torch.randn(7, 5)
    calls = record_kernels(lambda: (torch.relu(a @ a.T), a.T @ a, a.T @ a))
    replay = KernelReplay(calls)
    assert replay.calls == 4
    assert record_kernels(replay) == calls  # same operators, shapes, strides and counts


def test_kernels_and_tiers_of_the_same_layouts_share_their_inputs():
    """One random tensor per distinct layout: a replay of many same-shaped kernels (a
    chunked refiner's) costs the memory of one, and both tiers share it."""
    a, b = torch.randn(64, 32), torch.randn(32, 16)
    calls = record_kernels(lambda: [torch.relu(a @ b) for _ in range(5)])
    assert replay_bytes(calls) == (64 * 32 + 32 * 16 + 64 * 16) * 4  # a, b, the product
    replays = kernel_replays(lambda: [torch.relu(a @ b) for _ in range(5)], lambda: None)
    products, both = replays['products'], replays['products + norms']
    (_, args, _, count), = products.kernels
    assert count == 5
    shared = {id(t) for _, args, _, _ in both.kernels for t in args if torch.is_tensor(t)}
    assert {id(t) for t in args} <= shared


def test_a_replay_over_its_budget_is_refused_before_anything_is_built():
    a = torch.randn(256, 256)
    with pytest.raises(ReplayTooLarge, match=r'would need 0\.0 GiB of inputs, over its budget'):
        kernel_replays(lambda: a @ a @ a, lambda: None, budget=1000)
    assert kernel_replays(lambda: a @ a @ a, lambda: None, budget=10 ** 7)['products'].calls == 2


def test_tiers_keep_products_then_norms_too():
    a = torch.randn(16, 16)
    replays = kernel_replays(lambda: torch.relu(a @ a) @ a + torch.sigmoid(a), lambda: a @ a)
    assert set(replays) == set(TIERS)
    assert names(record_kernels(replays['products'])) == Counter(mm=1)
    assert names(record_kernels(replays['products + norms'])) == Counter(mm=1, relu=1)


def test_a_matcher_keeps_none_of_its_backbone_kernels_forward_or_backward(tiny_matcher):
    inputs, samples = random_pairs(tiny_matcher, 2)
    images = tiny_matcher.backbone_input(inputs)
    with torch.inference_mode():
        forward = names(_without(record_kernels(lambda: tiny_matcher(inputs)),
                                 record_kernels(lambda: tiny_matcher.backbone(images))))
    assert forward['convolution'] == 0 and forward['addmm'] > 0 and forward['bmm'] > 0
    tiny_matcher.train()
    try:
        def step():
            tiny_matcher.zero_grad(set_to_none=True)
            sum(tiny_matcher(inputs, samples, mode='loss').values()).backward()

        def backbone_step():
            tiny_matcher.zero_grad(set_to_none=True)
            sum(f.mean() for f in tiny_matcher.backbone(images)).backward()

        train = names(_without(record_kernels(step), record_kernels(backbone_step)))
    finally:
        tiny_matcher.eval()
        tiny_matcher.zero_grad(set_to_none=True)
    assert train['convolution'] == 0 and train['convolution_backward'] == 0
    assert train['native_layer_norm_backward'] > 0 and train['mm'] > 0
