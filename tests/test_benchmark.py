"""The benchmark tool's measurements (not the numbers they give) and its outputs."""
import json
import subprocess
import sys

import pytest
import torch

from corrkit.analysis.benchmark import (count_flops, peak_memory, scaling_exponent,
                                        stage_calls, time_call)


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


def test_benchmark_tool_writes_tables_json_and_plot(repo, tmp_path):
    refusing = tmp_path / 'refusing.py'
    refusing.write_text(f"_base_ = ['{repo}/configs/transformatcher_tiny_softmax.py']\n"
                        "model = dict(refiner=dict(attention=dict(max_score_bytes=1000)))\n")
    out = tmp_path / 'bench'
    done = subprocess.run(
        [sys.executable, 'tools/benchmark.py', 'configs/transformatcher_tiny.py', str(refusing),
         '--out-dir', str(out), '--warmup', '1', '--repeats', '2', '--batch-sizes', '1', '2',
         '--sweep-grid', '--sweep-sides', '3', '4', '5'],
        cwd=repo, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads((out / 'benchmark.json').read_text())
    tiny = report['models']['transformatcher_tiny']
    assert set(tiny['batches']) == {'1', '2'}
    entry = tiny['batches']['2']
    assert entry['forward_over_backbone'] > 0 and entry['train_over_backbone'] > 0
    assert tiny['floor_over_backbone'] >= 1 and entry['train_floor_over_backbone'] >= 1
    assert entry['train_added_gflops'] > 0 and tiny['added_gflops'] > 0
    assert set(entry['stages_ms']) == {'backbone', 'correlation', 'refiner', 'head', 'transfer'}
    assert 'needs' in report['models']['refusing']['refused']
    assert [r['side'] for r in report['sweep']['rows']] == [3, 4, 5]
    markdown = (out / 'benchmark.md').read_text()
    assert '| `transformatcher_tiny` |' in markdown and '| `refusing` |' in markdown
    assert 'refused:' in markdown and 'time ∝ matches^' in markdown
    assert (out / 'refiner_scaling.png').read_bytes()[:4] == b'\x89PNG'
    assert report['matmul_gflops'] > 0 and tiny['backbone_over_matmul'] > 0


def test_benchmark_tool_refuses_cuda_without_a_gpu(repo, tmp_path):
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA')
    done = subprocess.run([sys.executable, 'tools/benchmark.py', 'configs/transformatcher_tiny.py',
                           '--device', 'cuda', '--out-dir', str(tmp_path)],
                          cwd=repo, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and 'CUDA is not available' in done.stderr
    assert 'Traceback' not in done.stderr
