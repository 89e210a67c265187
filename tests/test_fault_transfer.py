"""corrkit transfer killed at random points and resumed ends with the uninterrupted files
(slow: `pytest -m slow`)."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from corrkit.apis import init_matcher

from .apis.test_transfer import KPS_A, KPS_B, coco_refs, texture

TINY = 'transformatcher_tiny'
TARGETS = 40
KILLS = 4
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}


@pytest.fixture
def setup(tmp_path):
    (tmp_path / 'refs').mkdir()
    texture(0).save(tmp_path / 'refs' / 'a.png')
    texture(1).save(tmp_path / 'refs' / 'b.png')
    refs = coco_refs(tmp_path, KPS_A, KPS_B)
    targets = tmp_path / 'targets'
    targets.mkdir()
    for i in range(TARGETS):
        texture(30 + i, size=(48 + 4 * (i % 5), 64)).save(targets / f'{i:02d}.png')
    weights = tmp_path / 'tiny.pth'
    torch.manual_seed(0)
    torch.save({'state_dict': init_matcher(TINY).state_dict()}, weights)
    return refs, targets, weights


def command(setup, out):
    refs, targets, weights = setup
    return [sys.executable, '-m', 'corrkit.cli', 'transfer', '--refs', str(refs), str(targets),
            '--model', TINY, '--checkpoint', str(weights), '--out-dir', str(out),
            '--batch-size', '1', '--no-progress', '--html']


def parts(out):
    return sorted((out / 'parts').glob('*.json')) if (out / 'parts').is_dir() else []


@pytest.mark.slow
def test_killed_and_resumed_transfer_ends_with_the_uninterrupted_files(setup, tmp_path):
    straight = tmp_path / 'straight'
    done = subprocess.run(command(setup, straight), capture_output=True, text=True,
                          timeout=600, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    rng = random.Random(5)
    out, kills = tmp_path / 'killed', []
    for attempt in range(KILLS + 1):
        before = len(parts(out))
        proc = subprocess.Popen(command(setup, out), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True, env=ENV)
        if attempt < KILLS:
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline and \
                    len(parts(out)) <= before:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.05))  # within the next few targets
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait(timeout=600)
        if attempt < KILLS and code == -signal.SIGKILL:
            kills.append(len(parts(out)))  # parts on disk when it died
            for path in parts(out):  # every part whole
                json.loads(path.read_text())
            continue
        assert code == 0
        if attempt < KILLS:
            break
    assert len([k for k in kills if k < TARGETS]) >= 2, \
        f'the runs ended before they could be killed mid-transfer: {kills}'
    print(f'{len(kills)} kills; parts on disk at each: {kills}')
    if len(parts(out)) < TARGETS or not (out / 'annotations.json').is_file():
        assert subprocess.run(command(setup, out), env=ENV, timeout=600).returncode == 0
    assert not [p for p in out.rglob('.*.tmp')]
    a, b = (json.loads((d / 'annotations.json').read_text()) for d in (straight, out))
    assert [i['file_name'] for i in a['images']] == [i['file_name'] for i in b['images']]
    for x, y in zip(a['annotations'], b['annotations']):
        assert x['keypoints'][2::3] == y['keypoints'][2::3]
        np.testing.assert_allclose(x['keypoints'], y['keypoints'], atol=0.02)
    again = subprocess.run(command(setup, out), capture_output=True, text=True, env=ENV,
                           timeout=600)
    assert f'{TARGETS} targets: 0 transferred, {TARGETS} already done' in again.stdout
