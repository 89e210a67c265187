"""Training through mmengine's Runner: the tool as typed, checkpoints, exact resume."""
import json
import os
import shlex
import subprocess
import sys

import pytest
import torch

from corrkit.apis.train import build_runner, train
from corrkit.datasets import make_mini_dataset

CONFIG = 'configs/transformatcher_tiny.py'


@pytest.fixture(scope='module')
def mini(tmp_path_factory):
    return make_mini_dataset(tmp_path_factory.mktemp('data') / 'mini', image_size=64,
                             views={'trn': 2, 'val': 1, 'test': 1}, num_keypoints=6)


def options(root, epochs):
    """Tiny, single-process, 32x32 training on the mini dataset (12 pairs, 3 iterations)."""
    opts = {'model.backbone.pretrained': False, 'train_cfg.max_epochs': epochs,
            'train_dataloader.batch_size': 4, 'val_dataloader.batch_size': 4,
            'train_dataloader.dataset.pipeline.2.size': 32,
            'val_dataloader.dataset.pipeline.1.size': 32,
            'default_hooks.logger.interval': 1}
    for loader in ('train_dataloader', 'val_dataloader'):
        opts.update({f'{loader}.dataset.data_root': str(root), f'{loader}.num_workers': 0,
                     f'{loader}.persistent_workers': False})
    return opts


def free_port():
    """A TCP port nobody listens on now (a fixed one can be taken by a lingering run)."""
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def launch(command, env, cwd):
    """Run a (multi-process) command; relaunch once, on a new port, if it crashed.

    A gloo run on a loaded 2-core machine was once seen to abort (SIGABRT in rank 0)
    and pass on the next launch; the second launch must succeed for the test to pass.
    """
    for attempt in range(2):
        result = subprocess.run(command(), cwd=cwd, capture_output=True, text=True, timeout=600,
                                env={**os.environ, 'OMP_NUM_THREADS': '1', **env()})
        if result.returncode == 0:
            return result
        first = error_lines(result.stderr)
        if attempt == 0:
            print(f'relaunching after a failed first launch:\n{first}')
    return result


def error_lines(stderr):
    """The lines of a failed multi-process run that say why, then its tail."""
    lines = [line for line in stderr.splitlines()
             if any(w in line for w in ('Error', 'error:', 'what()', 'Traceback', 'Abort'))]
    return '\n'.join(lines[-40:]) + '\n---\n' + stderr[-2000:]


def as_args(opts):
    return [f'{k}={v}' for k, v in opts.items()]


def test_train_tool_as_typed_then_test_tool_on_its_checkpoint(repo, mini, tmp_path):
    """Each report and validation log names the split and photos it measured (the mini
    dataset's categories), and the tool ends with the best checkpoint and its test command."""
    work = tmp_path / 'work'
    opts = dict(options(mini, 1), **{'train_dataloader.dataset.indices': 8})  # 2 iterations
    trained = subprocess.run([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(work),
                              '--cfg-options', *as_args(opts)], cwd=repo, capture_output=True,
                             text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert 'Epoch(train) [1][2/2]' in trained.stdout + trained.stderr
    checkpoint = work / 'epoch_1.pth'
    state = torch.load(checkpoint, weights_only=True)  # no allow-list needed
    assert {'state_dict', 'optimizer', 'message_hub', 'meta'} <= set(state)
    assert list(work.glob('best_PCK@0.1_epoch_1.pth'))
    assert (work / 'val' / 'pck_bbox.json').is_file()
    measured = json.loads((work / 'val' / 'pck_bbox.json').read_text())['measured_on']
    assert measured == dict(dataset='SPairDataset', split='val', data_root=str(mini), pairs=2,
                            categories=['camera', 'coins'])
    log = next(work.glob('*/*.log')).read_text()  # <work_dir>/<timestamp>/<timestamp>.log
    assert f"measured on split 'val' of SPairDataset at {mini}: 2 pairs, categories camera, " \
           f"coins" in log
    assert log.count("validation measures split 'val'") == 1
    assert "tools/test.py measures split 'test' of SPairDataset at data/SPair-71k" in log
    summary = trained.stdout.splitlines()[-4:]
    assert summary[0] == f'work dir: {work}'
    best = work / 'best_PCK@0.1_epoch_1.pth'
    assert summary[1].startswith(f'best checkpoint: {best} (validation PCK@0.1 ')
    assert summary[2] == (f"validation measured split 'val' of SPairDataset at {mini}: "
                          f"2 pairs, categories camera, coins")
    where, command = summary[3].split(': ', 1)
    assert where == "test it on split 'test' of SPairDataset at data/SPair-71k"
    command = shlex.split(command)  # the run's overrides, so it tests what it names
    assert command[:5] == ['corrkit', 'test', CONFIG, '--checkpoint', str(best)]
    assert command[5] == '--cfg-options' and set(command[6:]) == set(as_args(opts))
    # the printed command runs, here on the mini test split instead of SPair-71k's
    tested = subprocess.run([sys.executable, '-m', 'corrkit.cli', *command[1:],
                             '--work-dir', str(tmp_path / 'test'), '--cfg-options',
                             f'test_dataloader.dataset.data_root={mini}',
                             'test_dataloader.num_workers=0',
                             'test_dataloader.persistent_workers=False'],
                            cwd=repo, capture_output=True, text=True, timeout=600)
    assert tested.returncode == 0, error_lines(tested.stderr)
    assert 'PCK@0.1:' in tested.stdout
    assert f"measured on split 'test' of SPairDataset at {mini}: 3 pairs, categories " \
           f"chelsea, grace_hopper, motorcycle" in tested.stdout


@pytest.mark.parametrize('workers', [0, 2], ids=['main-process', 'two-workers'])
def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_run(repo, mini, tmp_path,
                                                                    monkeypatch, workers):
    """Random crop and photometric augmentation on, in the main process or in workers
    started as the dataset configs start them (non-persistent, seeded per epoch)."""
    monkeypatch.chdir(repo)
    opts = lambda epochs: dict(options(mini, epochs),  # noqa: E731
                               **{'train_dataloader.num_workers': workers})
    straight = train(CONFIG, str(tmp_path / 'straight'), opts(4))
    train(CONFIG, str(tmp_path / 'broken'), opts(2))
    resumed = train(CONFIG, str(tmp_path / 'broken'), opts(4), resume='auto')
    assert resumed.train_loop.epoch == straight.train_loop.epoch == 4
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different
    # and training did change the weights
    first = torch.load(tmp_path / 'broken' / 'epoch_3.pth', weights_only=True)['state_dict']
    assert any(not torch.equal(first[k], b[k]) for k in first)


def test_a_training_run_warns_of_nothing_corrkit_could_avoid(repo, mini, tmp_path,
                                                             monkeypatch, recwarn):
    """No deprecation warning from corrkit's configs and no log warning about schedulers it
    lacks; what remains comes from mmengine itself (the troubleshooting guide says so)."""
    monkeypatch.chdir(repo)
    runner = train(CONFIG, str(tmp_path / 'run'), options(mini, 1))
    assert runner.train_loop.epoch == 1
    mmengine_own = ('"FileClient" will be deprecated', '"HardDiskBackend" is the alias')
    ours = [str(w.message) for w in recwarn
            if issubclass(w.category, DeprecationWarning) and
            not any(text in str(w.message) for text in mmengine_own)]
    assert not ours, ours
    logs = list((tmp_path / 'run').rglob('*.log'))  # mmengine's logger writes the run's log
    assert logs and 'Epoch(train)' in logs[0].read_text()
    assert not [line for log in logs for line in log.read_text().splitlines()
                if 'WARNING' in line and 'param_scheduler' in line]


def test_training_summary_says_nothing_without_a_best_checkpoint(tmp_path):
    from types import SimpleNamespace

    from mmengine.logging import MessageHub

    from mmengine.hooks import CheckpointHook

    from corrkit.apis.train import training_summary
    hub = MessageHub.get_instance('summary-test')
    runner = SimpleNamespace(message_hub=hub, hooks=[], val_loop=None, cfg={})
    assert training_summary(runner) == []  # no validation: no best checkpoint
    hub.update_info('best_ckpt', str(tmp_path / 'gone.pth'))  # removed since
    assert training_summary(runner) == []
    (tmp_path / 'best.pth').write_bytes(b'')
    hub.update_info('best_ckpt', str(tmp_path / 'best.pth'))
    hub.update_info('best_score', 61.25)
    assert training_summary(runner, 'configs/my x.py', {'a.b': [1, 2], 'c': False}) == [
        f"best checkpoint: {tmp_path / 'best.pth'} (validation score 61.2)",
        f"test it on the test split: corrkit test 'configs/my x.py' --checkpoint "
        f"{tmp_path / 'best.pth'} --cfg-options 'a.b=[1,2]' c=False"]
    hub.update_info('best_ckpt', str(tmp_path / 'gone.pth'))  # several save_best keys:
    hub.update_info('best_ckpt_PCK@0.05', str(tmp_path / 'best.pth'))  # the first one's
    hub.update_info('best_score_PCK@0.05', 50.0)
    hook = CheckpointHook(save_best=['PCK@0.05', 'PCK@0.1'], rule='greater')
    runner.hooks = [hook]
    assert training_summary(runner)[0] == (f"best checkpoint: {tmp_path / 'best.pth'} "
                                           f"(validation PCK@0.05 50.0)")


def test_bad_requests_are_named(repo, monkeypatch, tmp_path):
    monkeypatch.chdir(repo)
    with pytest.raises(ValueError, match="unknown launcher 'mpi'"):
        build_runner(CONFIG, launcher='mpi')
    with pytest.raises(KeyError, match="cannot train: it has no \\['train_dataloader'"):
        build_runner(dict(model=dict(type='CorrelationMatcher')), str(tmp_path))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match='--amp needs a GPU'):
            build_runner(CONFIG, str(tmp_path), amp=True)


def test_two_processes_match_one_with_the_same_global_batch(repo, mini, tmp_path):
    """DDP over 2 CPU processes (gloo) vs 1 process, global batch 4, no random augmentation.

    The backbone is frozen (BatchNorm statistics would differ between a batch of 4 and
    two of 2); gradients are averaged over ranks, which equals the 1-process batch mean
    because the loss is a mean over equally sized per-rank batches. SGD keeps updates
    proportional to gradients (Adam's first steps are about lr * sign(g), which turns
    rounding noise on near-zero gradients into lr-sized differences). Tolerance: 1e-5.
    """
    config = tmp_path / 'ddp.py'
    config.write_text(
        f"_base_ = ['{repo / CONFIG}']\n"
        "test_pipeline = [dict(type='LoadPairImages'), dict(type='PairResize', size=32),\n"
        "                 dict(type='PackPairInputs')]\n"
        "train_dataloader = dict(dataset=dict(pipeline=test_pipeline))\n"
        "model = dict(backbone=dict(freeze=True, norm_eval=True))\n"
        "optim_wrapper = dict(optimizer=dict(_delete_=True, type='SGD', lr=0.05))\n")
    opts = {k: v for k, v in options(mini, 2).items() if 'pipeline' not in k}
    opts['val_dataloader.dataset.pipeline.1.size'] = 32

    def run(nproc, batch):
        work = tmp_path / f'p{nproc}'
        args = as_args(dict(opts, **{'train_dataloader.batch_size': batch}))
        if nproc == 1:
            cmd = [sys.executable, 'tools/train.py', str(config)]
        else:
            cmd = ['bash', 'tools/dist_train.sh', str(nproc), str(config)]
        result = launch(lambda: [*cmd, '--work-dir', str(work), '--cfg-options', *args],
                        lambda: {'PYTHON': sys.executable, 'PORT': str(free_port())}, repo)
        assert result.returncode == 0, error_lines(result.stderr)
        return [torch.load(work / f'epoch_{e}.pth', weights_only=True)['state_dict']
                for e in (1, 2)]

    (one_before, one), (_, two) = run(1, 4), run(2, 2)
    assert one.keys() == two.keys()
    trained = [k for k in one if k.startswith('refiner.')]
    assert any(not torch.equal(one_before[k], one[k]) for k in trained)  # it did learn
    for key in one:
        torch.testing.assert_close(two[key], one[key], atol=1e-5, rtol=1e-5)
    # distributed evaluation of a checkpoint: the weights go into the model inside DDP
    tested = launch(lambda: [
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        f'--master_port={free_port()}', 'tools/test.py', str(config), '--launcher', 'pytorch',
        '--checkpoint', str(tmp_path / 'p2' / 'epoch_2.pth'), '--work-dir', str(tmp_path / 't'),
        '--cfg-options', 'model.backbone.pretrained=False', 'test_dataloader.num_workers=0',
        f'test_dataloader.dataset.data_root={mini}', 'test_dataloader.persistent_workers=False',
        'test_dataloader.dataset.pipeline.1.size=32'], dict, repo)
    assert tested.returncode == 0, error_lines(tested.stderr)
    report = json.loads((tmp_path / 't' / 'pck_bbox.json').read_text())
    assert report['num_pairs'] == 3  # every test pair once, gathered from both processes


def test_launch_relaunches_a_crashed_run_once(tmp_path):
    flag = tmp_path / 'crashed'
    crash_once = ("import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
                  "sys.exit(0 if p.exists() else (p.touch() or 3))")
    result = launch(lambda: [sys.executable, '-c', crash_once, str(flag)], dict, tmp_path)
    assert result.returncode == 0 and flag.exists()
    always = launch(lambda: [sys.executable, '-c', 'import sys; sys.exit(4)'], dict, tmp_path)
    assert always.returncode == 4  # a second failure is reported, not hidden


def test_deterministic_runs_repeat_bit_for_bit(repo, mini, tmp_path):
    """Two fresh runs with --deterministic (random crops and colour jitter on) end equal."""
    states = []
    for name in ('first', 'second'):
        done = subprocess.run([sys.executable, 'tools/train.py', CONFIG, '--deterministic',
                               '--work-dir', str(tmp_path / name),
                               '--cfg-options', *as_args(options(mini, 2))],
                              cwd=repo, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, error_lines(done.stderr)
        assert 'deterministic: True' in done.stdout + done.stderr  # as mmengine logs it
        states.append(torch.load(tmp_path / name / 'epoch_2.pth',
                                 weights_only=True)['state_dict'])
    assert [k for k in states[0] if not torch.equal(states[0][k], states[1][k])] == []
    initial = torch.load(tmp_path / 'first' / 'epoch_1.pth', weights_only=True)['state_dict']
    assert any(not torch.equal(initial[k], states[0][k]) for k in initial)  # it did train
