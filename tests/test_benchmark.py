"""The benchmark tool's measurements (not the numbers they give) and its outputs."""
import json
import subprocess
import sys

import pytest
import torch

from corrkit.analysis.benchmark import (count_flops, peak_memory, scaling_exponent,
                                        stage_calls, sweep_resolution, time_call)
from corrkit.registry import MODELS

#: A tiny keypoint matcher: timm's test_resnet (random weights), one adapter block.
KEYPOINT_TINY = dict(
    type='KeypointMatcher', input_size=64,
    backbone=dict(type='TimmHypercolumnBackbone', model_name='test_resnet', pretrained=False,
                  taps=(2, 3)),
    neck=dict(type='AggregationNeck', out_channels=None, hidden_channels=8, num_blocks=1,
              norm_groups=2),
    head=dict(type='WindowSoftArgmaxHead'))


def test_time_call_reports_median_and_quartiles():
    calls = []
    timing = time_call(lambda: calls.append(1), torch.device('cpu'), warmup=2, repeats=5)
    assert len(calls) == 7 and timing.runs == 5
    assert 0 <= timing.q1_ms <= timing.median_ms <= timing.q3_ms


def test_flops_and_scaling_exponent():
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    assert count_flops(lambda: a @ b) == 2 * 8 * 16 * 4
    rows = [dict(matches=m, ms=3e-4 * m ** 1.5) for m in (10 ** 4, 15 ** 4, 30 ** 4)]
    assert scaling_exponent(rows) == pytest.approx(1.5)


def test_peak_memory_sees_a_large_allocation():
    grown = peak_memory(lambda: torch.ones(50_000_000).sum(), torch.device('cpu'))
    assert grown >= 150 * 2 ** 20  # 200 MB of ones, resident while summed
    assert peak_memory(lambda: None, torch.device('cpu')) < 50 * 2 ** 20


def test_stage_calls_chain_into_the_full_forward(tiny_matcher):
    inputs = torch.randn(2, 2, 3, *tiny_matcher.input_size)
    with torch.inference_mode():
        calls = stage_calls(tiny_matcher, inputs)
        assert list(calls) == ['backbone', 'correlation', 'refiner', 'head', 'transfer']
        torch.testing.assert_close(calls['head']().flow, tiny_matcher(inputs))
        assert calls['transfer']().shape == (2, 20, 2)


def test_keypoint_stage_calls_chain_into_the_full_forward():
    model = MODELS.build(KEYPOINT_TINY).eval()
    inputs = torch.randn(2, 2, 3, 64, 64)
    with torch.inference_mode():
        calls = stage_calls(model, inputs)
        assert list(calls) == ['backbone', 'similarity', 'head', 'dense flow']
        assert calls['similarity']().shape[:2] == (2, 20)
        assert calls['head']().kps.shape == (2, 20, 2)
        torch.testing.assert_close(calls['dense flow'](), model(inputs))


def test_resolution_sweep_grows_the_grid_and_names_a_refusal():
    from corrkit.layers import AttentionMemoryError

    def build(side):
        if side > 96:
            raise AttentionMemoryError('too large')
        return MODELS.build({**KEYPOINT_TINY, 'input_size': side})

    rows = sweep_resolution(build, [32, 64, 128], torch.device('cpu'), warmup=0, repeats=1)
    assert [r['side'] for r in rows] == [32, 64, 128]
    assert rows[2] == dict(side=128, refused='too large')
    assert rows[0]['grid'] == [4, 4] and rows[1]['grid'] == [8, 8]  # test_resnet: stride 8
    assert all(r['ms'] > 0 and r['peak_mb'] > 0 for r in rows[:2])


def test_benchmark_tool_writes_tables_json_and_plot(repo, tmp_path):
    refusing = tmp_path / 'refusing.py'
    refusing.write_text(f"_base_ = ['{repo}/configs/transformatcher_tiny_softmax.py']\n"
                        "model = dict(refiner=dict(attention=dict(max_score_bytes=1000)))\n")
    out = tmp_path / 'bench'
    done = subprocess.run(
        [sys.executable, 'tools/benchmark.py', 'configs/transformatcher_tiny.py', str(refusing),
         '--out-dir', str(out), '--warmup', '1', '--repeats', '2', '--batch-sizes', '1', '2',
         '--sweep-grid', '--sweep-sides', '3', '4', '5', '--sweep-resolutions', '32', '64'],
        cwd=repo, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads((out / 'benchmark.json').read_text())
    tiny = report['models']['transformatcher_tiny']
    assert set(tiny['batches']) == {'1', '2'}
    entry = tiny['batches']['2']
    assert entry['forward_over_backbone'] > 0 and entry['train_over_backbone'] > 0
    # the bare network (fastest layout) is timed in the same rounds and has its own column
    assert entry['forward_over_bare'] > 0 and entry['backbone_over_bare'] > 0
    assert entry['bare_network']['median_ms'] > 0 and 'bare network' not in entry['stages_ms']
    assert '× bare network (b2)' in (out / 'benchmark.md').read_text()
    assert tiny['floor_over_backbone'] >= 1 and entry['train_floor_over_backbone'] >= 1
    assert entry['train_added_gflops'] > 0 and tiny['added_gflops'] > 0
    assert set(entry['stages_ms']) == {'backbone', 'correlation', 'refiner', 'head', 'transfer'}
    assert set(entry['stages_over_backbone']) == set(entry['stages_ms']) - {'backbone'}
    assert all(v > 0 for v in entry['stages_over_backbone'].values())
    floors, train_floors = (entry['kernel_floor_over_backbone'],
                            entry['train_kernel_floor_over_backbone'])
    assert set(floors) == set(train_floors) == {'products', 'products + norms'}
    assert min(floors.values()) > 1 and min(train_floors.values()) > 1
    assert 'needs' in report['models']['refusing']['refused']
    assert [r['side'] for r in report['sweep']['rows']] == [3, 4, 5]
    markdown = (out / 'benchmark.md').read_text()
    assert '| `transformatcher_tiny` |' in markdown and '| `refusing` |' in markdown
    assert 'refused:' in markdown and 'time ∝ matches^' in markdown
    assert 'Kernel floors' in markdown and '| `transformatcher_tiny` | b2 |' in markdown
    share = round(100 * entry['stages_over_backbone']['refiner'])
    assert f"{entry['stages_ms']['refiner']:.1f} ({share} %)" in markdown
    assert (out / 'refiner_scaling.png').read_bytes()[:4] == b'\x89PNG'
    sweep = report['resolution_sweep']['transformatcher_tiny']
    assert [r['side'] for r in sweep] == [32, 64] and sweep[1]['grid'] == [4, 4]
    assert 'refused' in report['resolution_sweep']['refusing'][1]
    assert '| `transformatcher_tiny` | 64 | 4 × 4 |' in markdown
    assert (out / 'resolution_scaling.png').read_bytes()[:4] == b'\x89PNG'
    assert report['matmul_gflops'] > 0 and tiny['backbone_over_matmul'] > 0
    # its additive refiner runs on the fused CPU kernel (this machine has a C compiler)
    assert tiny['fused_refiner'] is True
    assert 'Refiner on the fused CPU kernel (inference): `transformatcher_tiny`.' in markdown
    assert 'fewer, larger steps than these PyTorch kernels, and can go below them' in markdown


def test_a_kernel_floor_over_its_memory_budget_is_named_not_measured(tiny_matcher, monkeypatch):
    import corrkit.analysis.benchmark as bench
    from corrkit.apis.benchmark import markdown_report
    monkeypatch.setattr(bench, 'default_replay_budget', lambda device: 1)
    result = bench.benchmark_model(tiny_matcher, (1,), warmup=0, repeats=1)
    entry = result['batches'][1]
    assert entry['kernel_floor_over_backbone'] == {} and entry['forward_over_backbone'] > 0
    assert 'over its budget of 0.0 GiB' in entry['kernel_floor_skipped']
    assert 'over its budget' in entry['train_kernel_floor_skipped']
    entry['train_floor_over_backbone'] = 1.2  # what benchmark_configs adds
    markdown = markdown_report(dict(device='cpu', threads=1, torch='x', precision='fp32',
                                    compiled=False, matmul_gflops=1.0, models={'tiny': dict(
                                        result, backbone_gflops_per_s=1.0,
                                        backbone_over_matmul=1.0, added_gflops=0.1,
                                        floor_over_backbone=1.1)}))
    assert 'Kernel floors not measured:' in markdown
    assert '- `tiny` b1 training step: the kernel replay would need' in markdown


def test_a_report_of_refusals_only_is_a_table():
    from corrkit.apis.benchmark import markdown_report
    markdown = markdown_report(dict(device='cpu', threads=1, torch='x', precision='fp32',
                                    compiled=False, matmul_gflops=1.0, models={
                                        'soft': dict(params=5e6, refused='attention needs 76.4 GiB for scores')}))
    assert '| `soft` | 5.0 | refused: 76.4 GiB of scores |' in markdown


def test_the_report_is_written_after_each_config(repo, tmp_path, monkeypatch):
    """A config that fails after another was measured leaves that one on disk."""
    from corrkit.apis import benchmark as api
    calls = []
    real = api.benchmark_model

    def failing_second(model, *args, **kwargs):
        calls.append(model)
        if len(calls) == 2:
            raise MemoryError('killed')
        return real(model, *args, **kwargs)

    monkeypatch.setattr(api, 'benchmark_model', failing_second)
    tiny = repo / 'configs' / 'transformatcher_tiny.py'
    with pytest.raises(MemoryError):
        api.benchmark_configs([tiny, tiny], tmp_path, batch_sizes=(1,), train=False,
                              warmup=0, repeats=1)
    report = json.loads((tmp_path / 'benchmark.json').read_text())
    assert list(report['models']) == ['transformatcher_tiny']
    assert '| `transformatcher_tiny` |' in (tmp_path / 'benchmark.md').read_text()


def test_benchmark_tool_refuses_cuda_without_a_gpu(repo, tmp_path):
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA')
    done = subprocess.run([sys.executable, 'tools/benchmark.py', 'configs/transformatcher_tiny.py',
                           '--device', 'cuda', '--out-dir', str(tmp_path)],
                          cwd=repo, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and 'CUDA is not available' in done.stderr
    assert 'Traceback' not in done.stderr
