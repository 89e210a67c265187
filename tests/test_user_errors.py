"""User mistakes end in one line that names the file, key or value; --debug shows more."""
import subprocess
import sys

import pytest

from corrkit.layers import AttentionMemoryError
from corrkit.registry import UnknownArgumentError
from corrkit.cli.common import user_errors

CONFIG = 'configs/transformatcher_tiny.py'


def run_tool(repo, *args):
    return subprocess.run([sys.executable, *args], cwd=repo, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize('override, expected', [
    ('model.trian_tau=0.1', "CorrelationMatcher got an unexpected config key 'trian_tau'; "
                            'did you mean train_tau'),
    ('model.type=CorrelationMatchr', "unknown type 'CorrelationMatchr' in registry "
                                     "'corrkit::model'; closest registered names: "
                                     'CorrelationMatcher'),
    ('train_dataloader.dataset.type=SPairDatset', "unknown type 'SPairDatset'"),
], ids=['unknown-key', 'unknown-model-type', 'unknown-dataset-type'])
def test_train_tool_names_config_mistakes_in_one_line(repo, tmp_path, override, expected):
    done = run_tool(repo, 'tools/train.py', CONFIG, '--work-dir', str(tmp_path),
                    '--cfg-options', override)
    assert done.returncode == 1
    assert expected in done.stderr
    assert 'Traceback' not in done.stderr and '--debug shows the traceback' in done.stderr


def test_a_config_with_a_syntax_error_is_named_with_its_line(repo, tmp_path):
    broken = tmp_path / 'broken.py'
    broken.write_text("_base_ = ['%s/configs/transformatcher_tiny.py']\nmodel = dict(\n" % repo)
    done = run_tool(repo, 'tools/test.py', str(broken))
    assert done.returncode == 1
    assert f"config file '{broken}' could not be read" in done.stderr
    assert 'SyntaxError' in done.stderr and 'Traceback' not in done.stderr
    debug = run_tool(repo, 'tools/test.py', str(broken), '--debug')
    assert debug.returncode == 1 and 'Traceback' in debug.stderr


def test_user_errors_cover_registry_and_memory_refusals(capsys):
    for err in (UnknownArgumentError(dict, 'colour', ['color']),
                AttentionMemoryError('needs 76.4 GiB')):
        with pytest.raises(SystemExit) as exit_info, user_errors():
            raise err
        assert exit_info.value.code == 1
    assert "did you mean color?" in capsys.readouterr().err


def test_dataloader_worker_errors_keep_the_workers_message(capsys):
    wrapped = ValueError('Caught ValueError in DataLoader worker process 0.\n'
                         'Original Traceback (most recent call last):\n'
                         '  File "x.py", line 1, in f\n'
                         "ValueError: image 'a.jpg' is not a readable image")
    with pytest.raises(SystemExit), user_errors():
        raise wrapped
    err = capsys.readouterr().err
    assert err.startswith('error: Caught ValueError in DataLoader worker process 0. '
                          "ValueError: image 'a.jpg' is not a readable image\n")
    assert 'x.py' not in err
