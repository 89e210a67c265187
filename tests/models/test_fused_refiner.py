"""The refiner's compiled CPU kernel: equal to the PyTorch paths, used only where it applies,
built once per size and cache, and a clean fallback where it cannot be built."""
import warnings

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from corrkit.layers import fused
from corrkit.layers.blocked import auto_chunk, blocked_refine
from corrkit.models.refiners.match_to_match import MatchToMatchRefiner


@pytest.fixture(scope='module')
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp('kernels')


@pytest.fixture(autouse=True)
def kernel_cache(shared_cache, monkeypatch):
    """The tests build into a folder of their own (one build per size for the module)
    and load afresh."""
    monkeypatch.setenv(fused.ENV_CACHE, str(shared_cache))
    monkeypatch.setattr(fused, '_LOADED', {})
    return shared_cache


def trained_looking(seed=0, **kwargs):
    torch.manual_seed(seed)
    refiner = MatchToMatchRefiner(**{'in_channels': 5, 'depth': 3, **kwargs}).eval()
    for p in refiner.parameters():
        p.data.normal_(0, 0.3)
    return refiner


def record_kernel_calls(monkeypatch):
    calls = []
    real = fused.fused_refine

    def spy(*args, **kwargs):
        calls.append(args[6])  # the chunk size
        return real(*args, **kwargs)

    monkeypatch.setattr('corrkit.models.refiners.match_to_match.fused_refine', spy)
    return calls


def pytorch_output(refiner, corr):
    """The refiner's inference output with the PyTorch kernels."""
    refiner.fused = False
    with torch.no_grad():
        out = refiner(corr)
    refiner.fused = True
    return out


def fused_and_pytorch(refiner, corr):
    """The refiner's inference output with the kernel, then with the PyTorch kernels."""
    with torch.no_grad():
        got = refiner(corr)
    return got, pytorch_output(refiner, corr)


@pytest.mark.parametrize('kwargs', [
    {},  # 16 channels, 8 heads of 4, rotary: the flagship's sizes
    {'position': 'none'},
    {'attention': dict(type='AdditiveAttention', query_residual=False)},
    {'embed_dims': 8, 'num_heads': 2, 'head_dims': 4},  # 8-float vectors
    {'embed_dims': 6, 'num_heads': 3, 'head_dims': 4, 'mlp_ratio': 2.0},  # scalar code
])
@pytest.mark.parametrize('chunk, workers', [(7, 1), (40, 3), (None, 2), (10_000, 1)])
def test_the_kernel_equals_the_pytorch_paths(kwargs, chunk, workers, monkeypatch):
    """Chunks of one tile (7 tokens asked for, rounded up to 16), of three with a
    partial one last (40 → 48 tokens, the last chunk 36), automatic, and the whole grid
    of 180 tokens (11 tiles and 4 tokens), several samples and threads: within 1e-5 of
    the PyTorch blocked forward and of the straightforward one."""
    refiner = trained_looking(**kwargs, chunk=chunk, workers=workers)
    corr = torch.rand(3, 5, 4, 3, 5, 3)
    calls = record_kernel_calls(monkeypatch)
    with torch.no_grad():
        got = refiner(corr)
        refiner.fused = False
        blocked = refiner(corr)
        refiner.chunk = 0
        straightforward = refiner(corr)
    assert len(calls) == 1
    torch.testing.assert_close(got, blocked, atol=1e-5, rtol=0)
    torch.testing.assert_close(got, straightforward, atol=1e-5, rtol=0)


def test_the_kernel_equals_the_blocked_path_on_the_flagship_grid():
    """15^4 matches of 26 channels, as at 240 pixels: the pools run over 50,625 tokens."""
    refiner = trained_looking(in_channels=26, depth=2)
    tokens = torch.rand(1, 26, 15 ** 4)
    grid = (15, 15, 15, 15)
    kernel = fused.fused_kernel(fused.kernel_sizes(refiner.embed, refiner.blocks, refiner.norm,
                                                   refiner.readout))
    layers = (refiner.embed, refiner.blocks, refiner.norm, refiner.readout, tokens, grid)
    chunk = auto_chunk(1, tokens.shape[-1], workers=2)
    with torch.inference_mode():
        expected = blocked_refine(*layers, chunk, 2)
        got = fused.fused_refine(kernel, *layers, chunk, 2)
    assert got.shape == expected.shape == (1, 15 ** 4, 1)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_the_kernel_runs_only_where_it_applies(monkeypatch):
    refiner = trained_looking()
    corr = torch.rand(1, 5, 3, 3, 3, 3)
    calls = record_kernel_calls(monkeypatch)
    refiner(corr)  # gradients on: the PyTorch path, which autograd can differentiate
    with torch.inference_mode():
        refiner.double()(corr.double())  # float64
        refiner.float()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            refiner(corr)
        with FlopCounterMode(display=False) as counter:  # counted kernels, not hidden ones
            refiner(corr)
        assert counter.get_total_flops() > 0
        refiner.fused = False
        refiner(corr)
        refiner.fused = True
        monkeypatch.setenv(fused.ENV_SWITCH, '0')
        refiner(corr)
        assert calls == []
        monkeypatch.delenv(fused.ENV_SWITCH)
        refiner(corr)
    assert len(calls) == 1


def test_sizes_the_kernel_does_not_compute_are_refused():
    refiner = trained_looking()
    layers = (refiner.embed, refiner.blocks, refiner.norm, refiner.readout)
    assert fused.kernel_sizes(*layers) == (5, 16, 8, 4, 64, True, True)
    refiner.blocks[1].mlp.act.approximate = 'tanh'
    assert fused.kernel_sizes(*layers) is None
    refiner.blocks[1].mlp.act.approximate = 'none'
    refiner.blocks[2].attn.proj.bias = None
    assert fused.kernel_sizes(*layers) is None
    performer = MatchToMatchRefiner(in_channels=5, attention=dict(type='PerformerAttention'))
    assert fused.kernel_sizes(performer.embed, performer.blocks, performer.norm,
                              performer.readout) is None


def test_the_kernel_is_built_once_per_size_and_kept(tmp_path, monkeypatch):
    kernel_cache = tmp_path / 'kernels'
    monkeypatch.setenv(fused.ENV_CACHE, str(kernel_cache))
    sizes = (5, 8, 2, 4, 16, True, True)
    path = fused.build_kernel(sizes)
    assert path.parent == kernel_cache and path.suffix == '.so'
    record = path.with_name(path.name.split('-')[0] + '.json')
    assert sorted(p.name for p in kernel_cache.iterdir()) == sorted([record.name, path.name])
    monkeypatch.setattr(fused.subprocess, 'run', lambda *a, **k: pytest.fail('rebuilt'))
    assert fused.build_kernel(sizes) == path
    other = dict(enumerate(sizes)) | {4: 32}  # another hidden size: another library
    with pytest.raises(pytest.fail.Exception, match='rebuilt'):
        fused.build_kernel(tuple(other.values()))


def test_without_a_compiler_the_refiner_warns_once_and_runs_its_pytorch_kernels(monkeypatch):
    refiner = trained_looking()
    corr = torch.rand(2, 5, 3, 4, 3, 4)
    expected = pytorch_output(refiner, corr)
    with torch.no_grad():
        monkeypatch.setenv('CC', '/nonexistent/cc')
        with pytest.warns(RuntimeWarning, match=r"without its fused CPU kernel, slower \(the C "
                                                r"compiler '/nonexistent/cc' was not found\); "
                                                r'set CORRKIT_FUSED_KERNEL=0'):
            got = refiner(corr)
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            again = refiner(corr)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(again, expected)


def test_a_failed_build_says_what_the_compiler_said(tmp_path, monkeypatch):
    compiler = tmp_path / 'cc'
    compiler.write_text('#!/bin/sh\necho "cc: error: no space left on device" >&2\nexit 1\n')
    compiler.chmod(0o755)
    monkeypatch.setenv('CC', str(compiler))
    monkeypatch.setenv(fused.ENV_CACHE, str(tmp_path / 'kernels'))
    with pytest.raises(fused.FusedKernelError, match='exited with 1:\ncc: error: no space left'):
        fused.build_kernel((5, 8, 2, 4, 16, True, True))
    assert not any(p.suffix == '.so' for p in (tmp_path / 'kernels').iterdir())


def test_the_refiner_says_which_kernels_an_inference_forward_runs():
    refiner = trained_looking()
    tokens = torch.rand(1, 5, 30)
    assert refiner.inference_kernel(tokens) is None  # gradients on
    with torch.inference_mode():
        assert refiner.inference_kernel(tokens) is not None
        assert refiner.inference_kernel(tokens.double()) is None
        refiner.chunk = 0  # the straightforward forward
        assert refiner.inference_kernel(tokens) is None
        assert trained_looking(position='absolute').inference_kernel(tokens) is None
        assert trained_looking(fused=False).inference_kernel(tokens) is None


def test_each_norm_keeps_its_own_eps_and_strided_tokens_are_read_as_strided():
    """Distinct eps per LayerNorm on inputs of low variance, where eps matters, and a
    correlation that is a permuted view (strides other than contiguous)."""
    refiner = trained_looking()
    for index, block in enumerate(refiner.blocks):
        block.norm1.eps, block.norm2.eps = 1e-3 * (index + 1), 2e-2 * (index + 1)
    refiner.norm.eps = 0.1
    corr = (0.01 * torch.rand(2, 4, 3, 5, 3, 5)).permute(0, 5, 2, 3, 4, 1)  # (2, 5, 3, 5, 3, 4)
    assert not corr.is_contiguous()
    got, expected = fused_and_pytorch(refiner, corr)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_large_logits_rescale_the_pools_across_tiles_chunks_and_threads():
    refiner = trained_looking(chunk=48, workers=2)
    for block in refiner.blocks:
        block.attn.query_weight.data *= 50
        block.attn.key_weight.data *= 50
    got, expected = fused_and_pytorch(refiner, torch.rand(2, 5, 4, 3, 5, 3))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_inputs_the_kernel_does_not_take_get_the_pytorch_path_and_its_errors():
    refiner = trained_looking()
    with torch.no_grad():
        with pytest.raises(RuntimeError, match='shapes cannot be multiplied'):
            refiner(torch.rand(1, 4, 3, 3, 3, 3))  # 4 channels for an embedding of 5
        with pytest.raises(RuntimeError, match='dtype'):
            refiner.double()(torch.rand(1, 5, 3, 3, 3, 3))  # a float64 model, float32 input
    tokens = torch.rand(1, 5, 81)
    kernel = fused.fused_kernel(fused.kernel_sizes(refiner.embed, refiner.blocks, refiner.norm,
                                                   refiner.readout))
    layers = (refiner.float().embed, refiner.blocks, refiner.norm, refiner.readout)
    with torch.inference_mode():
        with pytest.raises(ValueError, match='tokens have 4 channels, the embedding takes 5'):
            fused.fused_refine(kernel, *layers, tokens[:, :4], (3, 3, 3, 3), 16)
        with pytest.raises(ValueError, match='81 tokens do not match the 4D grid'):
            fused.fused_refine(kernel, *layers, tokens, (3, 3, 3, 4), 16)


def test_a_float64_default_dtype_does_not_reach_the_kernels_buffers():
    refiner = trained_looking()
    corr = torch.rand(1, 5, 3, 4, 3, 4)
    expected = pytorch_output(refiner, corr)
    with torch.no_grad():
        default = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            got = refiner(corr)
        finally:
            torch.set_default_dtype(default)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_nan_tokens_spread_as_in_pytorch():
    refiner = trained_looking()
    corr = torch.rand(2, 5, 3, 4, 3, 4)
    corr[1, 2, 1, 1, 1, 1] = float('nan')
    got, expected = fused_and_pytorch(refiner, corr)
    assert got[0].isfinite().all() and got[1].isnan().all()
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0, equal_nan=True)


def test_the_generic_build_without_native_code_agrees(monkeypatch):
    """The build a compiler that refuses -march=native gets (SSE2 on x86-64)."""
    monkeypatch.setattr(fused, 'NATIVE', [])
    refiner = trained_looking(chunk=48, workers=2)
    calls = record_kernel_calls(monkeypatch)
    got, expected = fused_and_pytorch(refiner, torch.rand(2, 5, 4, 3, 5, 3))
    assert len(calls) == 1
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_a_compiler_command_with_arguments(tmp_path, monkeypatch):
    """``CC='env gcc'`` (as ``ccache gcc`` would be): split into a command and its arguments."""
    monkeypatch.setenv('CC', f"env {fused._compiler()[0]}")
    monkeypatch.setenv(fused.ENV_CACHE, str(tmp_path / 'kernels'))
    assert fused.build_kernel((5, 8, 2, 4, 16, True, True)).exists()
