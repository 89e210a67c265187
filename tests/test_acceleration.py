"""Reduced precision and torch.compile: opt-in, close to fp32 eager, with clean fallbacks."""
import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from corrkit.analysis.benchmark import benchmark_model
from corrkit.apis import match_pair
from corrkit.layers import threads
from corrkit.utils.acceleration import autocast, compile_forward, precision_dtype


def test_autocast_runs_products_in_the_precision_asked_for():
    a = torch.ones(4, 4)
    with autocast('fp32', 'cpu'):
        assert (a @ a).dtype == torch.float32
    with autocast('bf16', 'cpu'):
        assert (a @ a).dtype == torch.bfloat16
    assert precision_dtype('fp16') == torch.float16
    with pytest.raises(ValueError, match=r"precision must be one of \['fp32', 'bf16', 'fp16'\], "
                                         r"got 'fp64'"):
        autocast('fp64', 'cpu')


def test_compile_falls_back_to_eager_when_the_compiled_call_fails(monkeypatch):
    def broken_compile(fn, **options):
        def compiled(*args, **kwargs):
            raise RuntimeError('no C++ compiler found\nmore detail')
        return compiled

    monkeypatch.setattr(torch, 'compile', broken_compile)
    layer = nn.Linear(3, 2)
    eager = layer(torch.ones(1, 3))
    compile_forward(layer)
    with pytest.warns(RuntimeWarning, match=r'torch.compile failed for Linear \(RuntimeError: '
                                            r'no C\+\+ compiler found\); running eagerly'):
        out = layer(torch.ones(1, 3))
    torch.testing.assert_close(out, eager)
    assert layer.forward.__func__ is nn.Linear.forward  # eager for good: no second warning
    assert list(layer.state_dict()) == ['weight', 'bias']


def test_compile_without_torch_compile_warns_and_keeps_the_module(monkeypatch):
    monkeypatch.delattr(torch, 'compile')
    layer = nn.Linear(3, 2)
    with pytest.warns(RuntimeWarning, match='not available'):
        assert compile_forward(layer) is layer
    assert layer(torch.ones(1, 3)).shape == (1, 2)


def test_compiled_refiner_equals_eager(tiny_matcher, monkeypatch):
    """A real torch.compile of the tiny matcher's refiner (a C++ build on CPU), through
    the blocked forward with several chunks and two workers asked for: one graph, no
    break (the thread checks and the rotary cache are read as constants), the chunks
    run on the calling thread and no pool thread is ever handed work."""
    from torch._dynamo.utils import counters
    refiner = copy.deepcopy(tiny_matcher.refiner)
    refiner.chunk, refiner.workers = 64, 2
    corr = torch.rand(2, refiner.in_channels, 4, 4, 4, 4)  # 4 chunks
    pools = []
    with torch.no_grad():
        eager = refiner(corr)
        monkeypatch.setattr(threads, 'worker_pool', lambda workers: pools.append(workers))
        counters.clear()
        with warnings.catch_warnings():
            warnings.simplefilter('error', RuntimeWarning)  # no silent fallback
            compiled = compile_forward(refiner)(corr)
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)
    assert pools == [] and dict(counters['graph_break']) == {}


def test_match_pair_in_bf16_is_close_to_fp32(tiny_matcher):
    rng = np.random.default_rng(0)
    src, trg = (rng.integers(0, 255, (40, 48, 3), dtype=np.uint8) for _ in range(2))
    full = match_pair(tiny_matcher, src, trg)
    half = match_pair(tiny_matcher, src, trg, precision='bf16')
    assert half.trg_kps.dtype == torch.float32 and half.flow.dtype == torch.float32
    # bf16 keeps 8 bits of mantissa: flows agree to a few hundredths of the image
    assert (half.flow - full.flow).abs().max() < 0.05
    assert not torch.equal(half.flow, full.flow)  # bf16 really ran
    with pytest.raises(ValueError, match='precision must be one of'):
        match_pair(tiny_matcher, src, trg, precision='int8')


def test_benchmark_model_in_bf16(tiny_matcher):
    model = copy.deepcopy(tiny_matcher)  # the training step updates BatchNorm statistics
    result = benchmark_model(model, batch_sizes=(1,), train=True, warmup=0, repeats=1,
                             precision='bf16')
    entry = result['batches'][1]
    assert entry['forward']['median_ms'] > 0 and entry['train_step']['median_ms'] > 0
    assert not any(p.grad is not None for p in model.parameters())  # gradients dropped
