"""Checkpoints: atomic writes, resuming from the newest readable one, refusing foreign files."""
import os
import pickle
from pathlib import Path

import pytest
import torch

from corrkit.apis import load_weights
from corrkit.apis.train import train
from corrkit.engine import atomic_write, newest_readable_checkpoint
from tests.test_train import CONFIG, mini, options  # noqa: F401  (mini is a fixture)


class Payload:
    """Unpickling this would run code; weights_only loading must refuse it."""

    def __reduce__(self):
        return (os.system, ('true',))


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / 'epoch_1.pth'
    atomic_write(b'old', target)

    def killed(fd):
        raise KeyboardInterrupt  # what a kill during the write looks like from inside

    monkeypatch.setattr(os, 'fsync', killed)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(b'new and longer', target)
    assert target.read_bytes() == b'old'
    assert [p.name for p in tmp_path.iterdir()] == ['epoch_1.pth']  # no temporary left


def test_newest_readable_checkpoint_passes_over_broken_files(tmp_path):
    assert newest_readable_checkpoint(tmp_path / 'nowhere') == (None, [])
    torch.save({'state_dict': {'w': torch.ones(2)}}, tmp_path / 'epoch_2.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}}, tmp_path / 'epoch_10.pth')
    good = (tmp_path / 'epoch_10.pth').read_bytes()
    (tmp_path / 'epoch_12.pth').write_bytes(good[:len(good) // 2])  # truncated by a kill
    torch.save(torch.ones(3), tmp_path / 'epoch_11.pth')  # not a training checkpoint
    with open(tmp_path / 'iter_13.pth', 'wb') as handle:
        pickle.dump(Payload(), handle)  # would run code if unpickled freely
    (tmp_path / 'best_PCK@0.1_epoch_20.pth').write_bytes(good)  # not a latest checkpoint
    path, skipped = newest_readable_checkpoint(tmp_path)
    assert path == tmp_path / 'epoch_10.pth'  # 10 > 2: steps compare as numbers
    assert [Path(line.split(' (')[0]).name for line in skipped] == [
        'iter_13.pth', 'epoch_12.pth', 'epoch_11.pth']
    assert 'not a training checkpoint' in skipped[2]


def test_load_weights_names_unreadable_and_unsafe_files(tiny_matcher, tmp_path):
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match=r"checkpoint '.*garbage.pth' cannot be read"):
        load_weights(tiny_matcher, garbage)
    unsafe = tmp_path / 'unsafe.pth'
    torch.save({'state_dict': Payload()}, unsafe)
    with pytest.raises(ValueError, match=r"unsafe.pth' cannot be read .*objects other than"):
        load_weights(tiny_matcher, unsafe)


def test_resume_auto_skips_a_truncated_checkpoint_and_never_runs_a_stored_config(
        repo, mini, tmp_path, monkeypatch, capsys):  # noqa: F811
    monkeypatch.chdir(repo)
    work = tmp_path / 'work'
    train(CONFIG, str(work), options(mini, 2))
    assert not list(work.glob('.*.tmp'))  # the atomic writer cleaned up after itself
    latest = work / 'epoch_2.pth'
    latest.write_bytes(latest.read_bytes()[:1000])  # as if killed mid-save by a plain writer
    first = torch.load(work / 'epoch_1.pth', weights_only=True)
    marker = tmp_path / 'config-ran'
    first['meta']['config'] = f"open({str(marker)!r}, 'w').close()\n"  # mmengine would exec it
    torch.save(first, work / 'epoch_1.pth')
    resumed = train(CONFIG, str(work), options(mini, 3), resume='auto')
    out = capsys.readouterr()
    log = out.out + out.err
    assert 'passing over unreadable checkpoint' in log and 'epoch_2.pth' in log
    assert f'resuming from {work / "epoch_1.pth"}' in log
    assert resumed.train_loop.epoch == 3
    assert not marker.exists()


def test_resume_refuses_a_checkpoint_of_another_model(repo, mini, tmp_path,
                                                      monkeypatch):  # noqa: F811
    monkeypatch.chdir(repo)
    work = tmp_path / 'work'
    train(CONFIG, str(work), options(mini, 1))
    other = dict(options(mini, 2), **{'model.refiner.depth': 3})
    with pytest.raises(RuntimeError, match=r"epoch_1.pth' does not fit CorrelationMatcher: "
                                           r"missing keys \['refiner.blocks.2"):
        train(CONFIG, str(work), other, resume='auto')


def test_resume_auto_without_a_checkpoint_starts_from_scratch(repo, mini, tmp_path,
                                                              monkeypatch, capsys):  # noqa: F811
    monkeypatch.chdir(repo)
    runner = train(CONFIG, str(tmp_path / 'fresh'), options(mini, 1), resume='auto')
    out = capsys.readouterr()
    assert 'no checkpoint in' in out.out + out.err
    assert runner.train_loop.epoch == 1


def test_atomic_checkpoints_keep_the_permissions_of_a_plain_write(tmp_path):
    atomic_write(b'x', tmp_path / 'atomic.pth')
    (tmp_path / 'plain.pth').write_bytes(b'x')
    assert ((tmp_path / 'atomic.pth').stat().st_mode
            == (tmp_path / 'plain.pth').stat().st_mode)  # not mkstemp's 0600
