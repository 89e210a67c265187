"""Fault injection: SIGKILL a training run at random points, resume, and end exact.

Slow (about a minute): run with ``pytest -m slow tests/test_fault_injection.py``.
"""
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.test_train import CONFIG, as_args, mini, options  # noqa: F401  (mini is a fixture)

EPOCHS = 10
KILLS = 6


def launch(repo, work, opts, log, resume):
    """Start tools/train.py in its own process group, output to ``log``."""
    command = [sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(work),
               '--cfg-options', *as_args(opts)] + (['--resume'] if resume else [])
    return subprocess.Popen(command, cwd=repo, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True,
                            env={**os.environ, 'OMP_NUM_THREADS': '1'})


def wait_for_training(proc, log_path, timeout=120):
    """Block until the run logs its first training iteration (or ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if 'Epoch(train)' in log_path.read_text(errors='replace'):
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_killed_and_resumed_runs_end_with_the_uninterrupted_weights(repo, mini,
                                                                     tmp_path):  # noqa: F811
    opts = dict(options(mini, EPOCHS), **{'default_hooks.logger.interval': 1})
    straight = subprocess.run([sys.executable, 'tools/train.py', CONFIG, '--work-dir',
                               str(tmp_path / 'straight'), '--cfg-options', *as_args(opts)],
                              cwd=repo, capture_output=True, text=True, timeout=600,
                              env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert straight.returncode == 0, straight.stdout[-3000:] + straight.stderr[-3000:]

    rng = random.Random(7)
    work = tmp_path / 'killed'
    kills = []
    for attempt in range(KILLS + 1):
        log_path = tmp_path / f'launch_{attempt}.log'
        with open(log_path, 'w') as log:
            proc = launch(repo, work, opts, log, resume=attempt > 0)
            if attempt < KILLS:
                wait_for_training(proc, log_path)
                time.sleep(rng.uniform(0.0, 1.0))  # anywhere in an epoch or a save
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    kills.append(sorted(p.name for p in work.glob('epoch_*.pth')))
            code = proc.wait(timeout=600)
        if attempt < KILLS and code == -signal.SIGKILL:
            text = log_path.read_text(errors='replace')
            if attempt > 0:
                assert '--resume: resuming from' in text or 'no checkpoint in' in text, text
            continue
        assert code == 0, log_path.read_text(errors='replace')[-3000:]
        break
    assert len(kills) >= 4, f'the runs ended before they could be killed: {kills}'
    print(f'{len(kills)} kills; checkpoints on disk at each: {kills}')

    a = torch.load(tmp_path / 'straight' / f'epoch_{EPOCHS}.pth', weights_only=True)
    b = torch.load(work / f'epoch_{EPOCHS}.pth', weights_only=True)
    assert a['meta']['epoch'] == b['meta']['epoch'] == EPOCHS
    different = [k for k in a['state_dict'] if not torch.equal(a['state_dict'][k],
                                                               b['state_dict'][k])]
    assert not different, f'kills at checkpoints {kills}; weights differ: {different}'
    for path in work.glob('epoch_*.pth'):  # no kill left a truncated checkpoint
        torch.load(path, weights_only=True)
    assert not list(work.glob('.*.tmp'))  # temporaries of killed saves were cleared on resume
