"""The cache-blocked refiner forward equals the straightforward one, values and gradients."""
import threading

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from corrkit.analysis.benchmark import peak_memory
from corrkit.layers.additive_attention import head_pool
from corrkit.layers.blocked import auto_chunk, blocked_refine, supports_blocking
from corrkit.layers.threaded_backward import GraphPiece, ThreadedBackwardFunction
from corrkit.layers.torch_passes import ChunkedBlock, OnlineHeadPool
from corrkit.models.refiners.match_to_match import MatchToMatchRefiner


def pair(refiner_kwargs=None, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    refiner = MatchToMatchRefiner(in_channels=5, depth=3, **(refiner_kwargs or {})).to(dtype)
    for p in refiner.parameters():  # a trained-looking refiner, not its zero-ish init
        p.data.normal_(0, 0.3)
    return refiner


@pytest.mark.parametrize('dtype, atol', [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize('kwargs', [{}, {'position': 'none'},
                                    {'attention': dict(type='AdditiveAttention',
                                                       query_residual=False)}])
@pytest.mark.parametrize('chunk', [1, 7, 64, 10_000])
@pytest.mark.parametrize('workers, grad', [(1, True), (3, True), (3, False)])
def test_blocked_forward_equals_the_straightforward_one(dtype, atol, kwargs, chunk, workers, grad):
    """With gradients needed and several workers, the forward that keeps a graph per
    thread and pass; without, the plain one."""
    refiner = pair(dict(kwargs, workers=workers, fused=False), dtype)  # the kernel: test_fused
    corr = torch.rand(2, 5, 4, 3, 5, 4, dtype=dtype)
    refiner.chunk = 0
    expected = refiner(corr)
    refiner.chunk = chunk
    with torch.set_grad_enabled(grad):
        torch.testing.assert_close(refiner(corr), expected, atol=atol, rtol=0)


def test_the_default_refiner_takes_the_blocked_path_and_others_do_not():
    assert MatchToMatchRefiner(in_channels=3).chunk is None  # automatic
    assert supports_blocking(MatchToMatchRefiner(in_channels=3).blocks)
    assert not supports_blocking(MatchToMatchRefiner(
        in_channels=3, attention=dict(type='PerformerAttention')).blocks)
    absolute = pair({'position': 'absolute'})  # falls back: same result with any chunk
    corr = torch.rand(1, 5, 3, 3, 3, 3)
    absolute.chunk = 0
    expected = absolute(corr)
    absolute.chunk = 4
    torch.testing.assert_close(absolute(corr), expected)
    with pytest.raises(ValueError, match='chunk must be None'):
        MatchToMatchRefiner(in_channels=3, chunk=-1)


def test_a_hook_on_the_embedding_sees_every_token_at_once():
    refiner = pair()
    shapes = []
    handle = refiner.embed.register_forward_hook(lambda m, args, out: shapes.append(out.shape))
    refiner(torch.rand(1, 5, 3, 3, 3, 3))
    handle.remove()
    assert shapes == [torch.Size([1, 81, 16])]


def test_under_bf16_autocast_both_paths_agree_to_its_precision():
    refiner = pair()
    corr = torch.rand(2, 5, 4, 3, 5, 4)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        refiner.chunk = 0
        expected = refiner(corr).float()
        refiner.chunk = 16
        got = refiner(corr).float()
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, atol=0.1 * expected.abs().max().item(), rtol=0)


def test_a_forward_hook_on_an_attention_layer_still_fires():
    """The nonlocality analysis hooks the attention layers: those get the straightforward path."""
    refiner = pair()
    calls = []
    handle = refiner.blocks[1].attn.register_forward_hook(lambda *args: calls.append(1))
    assert not supports_blocking(refiner.blocks)
    refiner(torch.rand(1, 5, 3, 3, 3, 3))
    handle.remove()
    assert calls == [1] and supports_blocking(refiner.blocks)


@pytest.mark.parametrize('workers', [1, 2])
def test_gradients_through_the_blocked_path_are_exact(workers):
    refiner = pair({'workers': workers}, dtype=torch.float64)
    refiner.chunk = 5
    corr = torch.rand(1, 5, 2, 3, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(refiner, (corr,), eps=1e-6, atol=1e-7)
    grads = {}
    for chunk in (0, 5):
        refiner.zero_grad()
        refiner.chunk = chunk
        (refiner(corr) ** 2).sum().backward()
        grads[chunk] = {n: p.grad.clone() for n, p in refiner.named_parameters()}
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[5][name], grad, atol=1e-12, rtol=0, msg=name)


def test_the_tokens_gradient_is_written_once_not_once_per_chunk():
    """A per-chunk slice of the tokens would give each chunk's gradient its own zeros
    the size of all tokens, summed afterwards: at batch 8 and 50 chunks that was a
    fifth of the refiner's training step."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class FullSize(TorchDispatchMode):
        def __init__(self, numel):
            super().__init__()
            self.numel, self.ops = numel, []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            inputs = {a.untyped_storage().data_ptr() for a in args if isinstance(a, torch.Tensor)}
            if isinstance(out, torch.Tensor) and out.numel() == self.numel and \
                    out.untyped_storage().data_ptr() not in inputs:  # a new tensor, not a view
                self.ops.append(str(func))
            return out

    refiner = pair()
    refiner.chunk = 16
    corr = torch.rand(2, 5, 4, 4, 4, 4, requires_grad=True)  # 16 chunks
    out = refiner(corr).square().sum()
    with FullSize(corr.numel()) as mode:
        out.backward()
    assert len(mode.ops) == 1, mode.ops
    refiner.chunk = 0
    (expected,) = torch.autograd.grad(refiner(corr).square().sum(), corr)
    torch.testing.assert_close(corr.grad, expected, atol=1e-5, rtol=1e-4)


def test_peak_memory_does_not_grow():
    refiner = pair()
    corr = torch.rand(2, 5, 8, 8, 8, 8)

    def step(chunk):
        refiner.chunk = chunk
        refiner.zero_grad()
        refiner(corr).square().sum().backward()

    def infer(chunk):
        refiner.chunk = chunk
        with torch.inference_mode():
            refiner(corr)

    cpu = torch.device('cpu')
    assert peak_memory(lambda: step(512), cpu) <= 1.05 * peak_memory(lambda: step(0), cpu)
    assert peak_memory(lambda: infer(512), cpu) <= peak_memory(lambda: infer(0), cpu)


def test_online_pool_matches_the_softmax_over_all_tokens():
    logits = torch.randn(3, 4, 50, dtype=torch.float64) * 30  # large logits: rescaling matters
    x = torch.randn(3, 50, 4 * 2, dtype=torch.float64)
    pool = OnlineHeadPool()
    for start in range(0, 50, 9):
        pool.update(logits[..., start:start + 9], x[:, start:start + 9])
    torch.testing.assert_close(pool.result(), head_pool(logits.softmax(-1), x))


def test_merged_pools_equal_one_pool_over_all_tokens():
    logits = torch.randn(2, 4, 40, dtype=torch.float64) * 30
    x = torch.randn(2, 40, 4 * 3, dtype=torch.float64)
    pools = [OnlineHeadPool() for _ in range(3)]
    for index, start in enumerate(range(0, 40, 5)):  # chunks dealt round-robin
        pools[index % 3].update(logits[..., start:start + 5], x[:, start:start + 5])
    merged = OnlineHeadPool.merge([OnlineHeadPool(), *pools])  # an empty pool is ignored
    torch.testing.assert_close(merged.result(), head_pool(logits.softmax(-1), x))


def test_auto_chunk_keeps_rows_near_the_target():
    assert auto_chunk(1, 50625) * 1 == 8192
    assert auto_chunk(8, 50625) * 8 == 8192
    assert auto_chunk(64, 50625) == 128  # a floor, so chunks stay worth a call
    assert auto_chunk(1, 100) == 100


@pytest.mark.parametrize('batch, tokens, workers', [(1, 50625, 2), (8, 50625, 2), (2, 50625, 3),
                                                    (1, 50625, 4), (1, 9000, 2), (1, 16000, 4)])
def test_auto_chunk_gives_the_threads_equal_shares(batch, tokens, workers):
    """Round-robin shares within 1 % of each other, rows within a quarter of the target
    (7 chunks of 8192 for two threads left one of them a sixth more work)."""
    chunk = auto_chunk(batch, tokens, workers=workers)
    sizes = [min(chunk, tokens - start) for start in range(0, tokens, chunk)]
    shares = [sum(sizes[first::workers]) for first in range(workers)]
    assert len(sizes) % workers == 0 and max(shares) - min(shares) <= 0.01 * max(shares)
    if tokens * batch >= 2 * workers * 8192:
        assert abs(chunk * batch - 8192) <= 8192 / 4


def test_the_refiner_chunks_for_its_workers_unless_told(monkeypatch):
    from corrkit.models.refiners import match_to_match
    calls = []

    def recording(*args):
        calls.append(args[-2:])  # chunk, workers
        return blocked_refine(*args)

    monkeypatch.setattr(match_to_match, 'blocked_refine', recording)
    corr = torch.rand(1, 3, 10, 10, 10, 10)  # 10,000 tokens: 8192 + 1808 on their own
    MatchToMatchRefiner(in_channels=3, depth=1, workers=2)(corr)
    MatchToMatchRefiner(in_channels=3, depth=1, workers=2, chunk=8192)(corr)
    MatchToMatchRefiner(in_channels=3, depth=1, workers=1)(corr)
    assert calls == [(5000, 2), (8192, 2), (8192, 1)]


def thread_recorder(monkeypatch, owner, name) -> list[str]:
    """The names of the threads ``owner.name`` runs on, as it runs."""
    threads = []
    method = getattr(owner, name)

    def recording(self, *args):
        threads.append(threading.current_thread().name)
        return method(self, *args)

    monkeypatch.setattr(owner, name, recording)
    return threads


def test_chunks_run_on_the_worker_threads_only_where_they_may(monkeypatch):
    refiner = pair({'workers': 2})
    refiner.chunk = 9
    corr = torch.rand(1, 5, 3, 3, 3, 3)  # 81 tokens: 9 chunks
    threads = thread_recorder(monkeypatch, ChunkedBlock, 'project')
    expected = refiner(corr)
    assert len(threads) == 9 * 3 and all(t.startswith('corrkit-worker') for t in threads)
    assert len(set(threads)) == 2
    threads.clear()
    with FlopCounterMode(display=False) as flops:  # a mode sees this thread's kernels only
        torch.testing.assert_close(refiner(corr), expected, atol=1e-5, rtol=0)
    assert set(threads) == {threading.current_thread().name}
    refiner.workers = 1
    threads.clear()
    with FlopCounterMode(display=False) as serial:
        refiner(corr)
    assert set(threads) == {threading.current_thread().name}
    assert flops.get_total_flops() == serial.get_total_flops() > 0


def segmented_node(out):
    """The :class:`ThreadedBackwardFunction` node behind a refiner's output."""
    stack, seen = [out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if type(node).__name__ == ThreadedBackwardFunction.__name__ + 'Backward':
            return node
        stack.extend(n for n, _ in node.next_functions)
    return None


@pytest.mark.parametrize('dtype, atol', [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize('needs', ['both', 'tokens', 'weights'])
def test_the_threaded_backward_equals_the_one_thread_backward(monkeypatch, dtype, atol, needs):
    """Several workers: the backward of each thread's share of each pass runs on that
    thread; gradients of the tokens and of every weight agree with one thread, are the
    same from call to call, and the pieces are freed once used."""
    refiner = pair({'workers': 2}, dtype)
    refiner.chunk = 7
    refiner.requires_grad_(needs != 'tokens')
    corr = torch.rand(2, 5, 3, 4, 3, 4, dtype=dtype, requires_grad=needs != 'weights')
    weights = torch.randn(2, 1, 3, 4, 3, 4, dtype=dtype)
    threads = thread_recorder(monkeypatch, GraphPiece, 'backward')
    inputs = ([corr] if corr.requires_grad else []) + [p for p in refiner.parameters()
                                                       if p.requires_grad]
    runs = []
    for workers in (2, 2, 1):
        refiner.workers = workers
        out = refiner(corr)
        node = segmented_node(out)
        assert (node is not None) == (workers == 2)
        runs.append(torch.autograd.grad((out * weights).sum(), inputs))
        if node is not None:
            assert node.run.stages == [] and node.run.out == []
    assert {t for t in threads if t.startswith('corrkit-worker')} == {
        'corrkit-worker_0', 'corrkit-worker_1'}
    for first, again, serial in zip(*runs):
        assert torch.equal(first, again)
        torch.testing.assert_close(first, serial, atol=atol, rtol=atol)


def test_a_mode_around_the_threaded_backward_alone_sees_all_of_it(monkeypatch):
    """The forward ran on the threads; a FLOP counter entered for the backward only
    keeps the backward on the calling thread, and counts what one thread's does."""
    refiner = pair({'workers': 2})
    refiner.chunk = 9
    corr = torch.rand(1, 5, 3, 3, 3, 3, requires_grad=True)
    threads = thread_recorder(monkeypatch, GraphPiece, 'backward')
    counts = []
    for workers in (2, 1):
        refiner.workers = workers
        out = refiner(corr).sum()
        with FlopCounterMode(display=False) as flops:
            out.backward()
        counts.append(flops.get_total_flops())
    assert threads and set(threads) == {threading.current_thread().name}
    assert counts[0] == counts[1] > 0


def test_the_threaded_backward_runs_again_and_refuses_a_second_derivative():
    refiner = pair({'workers': 2}, torch.float64)
    refiner.chunk = 5
    corr = torch.rand(1, 5, 2, 3, 2, 3, dtype=torch.float64, requires_grad=True)
    out = refiner(corr).square().sum()
    (first,) = torch.autograd.grad(out, corr, retain_graph=True)
    (again,) = torch.autograd.grad(out, corr)  # the forward runs again from the saved inputs
    torch.testing.assert_close(first, again, atol=1e-12, rtol=0)
    with pytest.raises(RuntimeError, match='first derivatives only.*set workers=1'):
        torch.autograd.grad(refiner(corr).square().sum(), corr, create_graph=True)
    refiner.workers = 1
    (grad,) = torch.autograd.grad(refiner(corr).square().sum(), corr, create_graph=True)
    assert torch.autograd.grad(grad.sum(), corr)[0].abs().sum() > 0


def test_the_threaded_backward_sees_weights_changed_in_place():
    refiner = pair({'workers': 2})
    refiner.chunk = 5
    out = refiner(torch.rand(1, 5, 2, 3, 2, 3)).sum()
    with torch.no_grad():
        refiner.embed.weight.add_(1)
    with pytest.raises(RuntimeError, match='modified by an inplace operation'):
        out.backward()


def test_workers_must_be_a_positive_int():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match='workers must be None'):
            MatchToMatchRefiner(in_channels=3, workers=bad)
