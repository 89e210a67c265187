"""The corrkit command: list, match (with the viewer), match-pairs, publish; hubconf."""
import csv
import dataclasses
import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from corrkit.apis import init_matcher
from corrkit.apis.batch import match_pairs, read_pairs
from corrkit.apis.publish import KEPT_META, publish_model
from corrkit.cli import COMMANDS, main
from corrkit.cli.list_models import readiness
from corrkit.errors import WeightsError
from corrkit.hub.model_index import load_model_index
from corrkit.hub.model_names import model_names

TINY = 'transformatcher_tiny'


def photo(path, size=(80, 60), seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def corrkit(*args, cwd=None):
    return subprocess.run([sys.executable, '-m', 'corrkit.cli', *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_the_console_script_is_installed_and_lists_every_command():
    script = Path(sys.executable).parent / 'corrkit'
    assert script.is_file(), 'pip install -e . installs the corrkit console script'
    done = subprocess.run([str(script), '--help'], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for command in COMMANDS:
        assert command in done.stdout


@pytest.fixture
def weights_cache(tmp_path, monkeypatch):
    """An empty torch.hub and Hugging Face cache; returns torch.hub's checkpoints folder."""
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'torch'))
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path / 'hf'))
    checkpoints = tmp_path / 'torch' / 'checkpoints'
    checkpoints.mkdir(parents=True)
    return checkpoints


def cache_mobilenet_v2(checkpoints):
    """Put a file where the MobileNetV2 weights live (readiness neither reads nor hashes it)."""
    file = load_model_index()['zeroshot_mobilenetv2'].backbone_weights.filename
    (checkpoints / file).write_bytes(b'weights')


def table(out):
    """The table's rows (up to the blank line before the notes)."""
    return out.split('\n\n')[0].splitlines()


def test_list_shows_names_weights_and_descriptions(capsys, weights_cache):
    assert main(['list', 'zeroshot_mobilenetv2*']) == 0
    lines = table(capsys.readouterr().out)
    assert [line.split()[:2] for line in lines] == [
        ['zeroshot_mobilenetv2', 'zero-shot'], ['zeroshot_mobilenetv2_ap10k', 'zero-shot'],
        ['zeroshot_mobilenetv2_softargmax', 'zero-shot'],
        ['zeroshot_mobilenetv2_upsample', 'zero-shot']]
    assert main(['list', 'transformatcher_spair']) == 0
    assert capsys.readouterr().out.split()[:2] == ['transformatcher_spair', 'train']
    assert main(['list', 'no_such_model']) == 1


def test_readiness_follows_the_cache(weights_cache):
    index = load_model_index()
    assert readiness(index['zeroshot_mobilenetv2']) == 'fetch'  # published, not cached
    assert readiness(index['dinov2_zeroshot_spair']) == 'fetch'  # a Hugging Face file
    assert readiness(index['transformatcher_spair']) == 'no'  # train it
    assert readiness(index[TINY]) == 'no'  # random backbone, but a head to train
    assert readiness(None) == 'no'
    random_backbone = dataclasses.replace(index['zeroshot_mobilenetv2'], backbone_weights=None)
    assert readiness(random_backbone) == 'yes'  # zero-shot and loads no file
    cache_mobilenet_v2(weights_cache)
    assert readiness(index['zeroshot_mobilenetv2']) == 'yes'
    assert readiness(index['dinov2_zeroshot_spair']) == 'fetch'


def test_list_says_which_models_run_now(capsys, weights_cache):
    assert main(['list', 'zeroshot_mobilenetv2']) == 0  # an empty cache: nothing runs now
    row = table(capsys.readouterr().out)[0]
    assert row.split()[:4] == ['zeroshot_mobilenetv2', 'zero-shot', 'fetch', 'it']
    assert main(['list', 'zeroshot_mobilenetv2', '--ready']) == 1
    hint = capsys.readouterr().out
    assert len(hint.splitlines()) == 1 and 'not in the cache' in hint and 'make weights' in hint
    cache_mobilenet_v2(weights_cache)
    assert main(['list', 'zeroshot_mobilenetv2']) == 0
    row = table(capsys.readouterr().out)[0]
    assert row.split()[:4] == ['zeroshot_mobilenetv2', 'zero-shot', 'runs', 'now']
    assert main(['list', 'transformatcher_spair']) == 0  # must be trained: blank
    row = table(capsys.readouterr().out)[0]
    assert 'runs now' not in row and 'fetch it' not in row
    assert main(['list', 'no_such_model', '--ready']) == 1  # a miss is a miss, ready or not
    assert 'no model matches' in capsys.readouterr().out


def test_list_ready_lists_only_the_models_that_run_now(capsys, weights_cache):
    assert main(['list', '--ready']) == 1  # an empty cache
    capsys.readouterr()
    cache_mobilenet_v2(weights_cache)
    assert main(['list', '--ready']) == 0
    rows = table(capsys.readouterr().out)
    assert main(['list']) == 0
    everything = table(capsys.readouterr().out)
    assert rows == [row for row in everything if '  runs now  ' in row]
    names = {row.split()[0] for row in rows}
    assert {'zeroshot_mobilenetv2', 'keypoint_mobilenetv2_zeroshot_upsample'} <= names
    assert not names & {'dinov2_zeroshot_spair', 'transformatcher_spair', TINY}
    assert len(rows) < len(everything)


def test_list_marks_the_defaults_and_says_to_start_with_them(capsys, weights_cache):
    from corrkit.cli import match, match_pairs, transfer
    assert main(['list', 'mobilenetv2']) == 0
    out = capsys.readouterr().out
    marked = {row.split()[0]: row for row in table(out) if '[default of corrkit' in row}
    assert set(marked) == {match.DEFAULT_MODEL, transfer.DEFAULT_MODEL}
    assert match_pairs.DEFAULT_MODEL == match.DEFAULT_MODEL
    assert '[default of corrkit match, match-pairs] ' in marked[match.DEFAULT_MODEL]
    assert '[default of corrkit transfer] ' in marked[transfer.DEFAULT_MODEL]
    notes = out.split('\n\n')[1]
    assert notes.startswith(f'start with: {match.DEFAULT_MODEL} (corrkit match, match-pairs)')
    assert transfer.DEFAULT_MODEL in notes and 'runs now: ' in notes
    assert max(len(line) for line in notes.splitlines()) <= 100


def test_match_writes_keypoints_pictures_and_the_viewer(tmp_path):
    src, trg = photo(tmp_path / 'a.png'), photo(tmp_path / 'b.jpg', (70, 90), 1)
    kps = tmp_path / 'kps.json'
    kps.write_text(json.dumps([[10, 12], [40.5, 30]]))
    done = corrkit('match', str(src), str(trg), '--model', TINY, '--kps', str(kps),
                   '--out-dir', str(tmp_path / 'out'), '--html')
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / 'out' / 'matches.json').read_text())
    assert result['src_kps'] == [[10, 12], [40.5, 30]] and len(result['trg_kps']) == 2
    page = (tmp_path / 'out' / 'matches.html').read_text()
    assert 'id="corrkit-data"' in page and 'model: transformatcher_tiny' in page
    for name in ('matches.png', 'warp.png'):
        assert (tmp_path / 'out' / name).is_file()


def test_match_errors_are_one_line(tmp_path):
    done = corrkit('match', str(tmp_path / 'missing.png'), str(tmp_path / 'b.png'),
                   '--model', TINY, '--out-dir', str(tmp_path / 'out'))
    assert done.returncode == 1
    assert done.stderr.startswith('error: ') and 'missing.png' in done.stderr
    assert 'Traceback' not in done.stderr


@pytest.fixture
def pair_list(tmp_path):
    for i in range(3):
        photo(tmp_path / f's{i}.png', seed=i)
        photo(tmp_path / f't{i}.png', seed=10 + i)
    (tmp_path / 'kps.csv').write_text('x,y\n5,5\n20,30\n')
    (tmp_path / 'bad_kps.csv').write_text('x,y\n5,five\n')
    listing = tmp_path / 'pairs.csv'
    listing.write_text('source,target,kps\ns0.png,t0.png,kps.csv\ns1.png,missing.png,\n'
                       's2.png,t2.png,bad_kps.csv\ns0.png,t0.png,\n')
    return listing


def test_read_pairs_from_a_list_resolves_paths_and_keeps_ids_unique(pair_list):
    pairs = read_pairs([pair_list])
    assert [p.id for p in pairs] == ['s0__t0', 's1__missing', 's2__t2', 's0__t0_2']
    assert pairs[0].source == pair_list.parent / 's0.png'
    assert pairs[0].kps == pair_list.parent / 'kps.csv' and pairs[3].kps is None
    as_json = pair_list.with_suffix('.json')
    as_json.write_text(json.dumps([{'source': 's0.png', 'target': 't0.png'}, ['s1.png', 't1.png']]))
    assert [p.id for p in read_pairs([as_json])] == ['s0__t0', 's1__t1']


@pytest.mark.parametrize('content, message', [
    ('s0.png\n', "pairs.csv', row 1: expected source,target[,kps], got ['s0.png']"),
    ('a,b\ns0.png,t0.png,k,extra\n', "pairs.csv', row 2: expected source,target[,kps]"),
])
def test_a_bad_pair_list_names_file_and_row(tmp_path, content, message):
    listing = tmp_path / 'pairs.csv'
    listing.write_text(content)
    with pytest.raises(ValueError) as err:
        read_pairs([listing])
    assert message in str(err.value)


def test_two_folders_are_paired_by_name(tmp_path):
    (tmp_path / 'src').mkdir(), (tmp_path / 'trg').mkdir()
    for name in ('cat', 'dog'):
        photo(tmp_path / 'src' / f'{name}.png')
    photo(tmp_path / 'trg' / 'dog.jpg')
    (tmp_path / 'trg' / 'notes.txt').write_text('not an image')
    pairs = read_pairs([tmp_path / 'src', tmp_path / 'trg'])
    assert [(p.id, p.target.name) for p in pairs] == [('dog', 'dog.jpg')]
    photo(tmp_path / 'other.png')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='share no file name'):
        read_pairs([tmp_path / 'src', tmp_path / 'empty'])


def test_match_pairs_skips_bad_pairs_and_resumes(pair_list, tmp_path):
    model = init_matcher(TINY)
    out = tmp_path / 'results'
    errors = []
    report = match_pairs(model, read_pairs([pair_list]), out, progress=False,
                         on_error=lambda pair_id, message: errors.append(pair_id))
    assert report.matched == ['s0__t0', 's0__t0_2'] and report.skipped == []
    assert set(report.failed) == set(errors) == {'s1__missing', 's2__t2'}
    assert 'missing.png' in report.failed['s1__missing']
    assert 'bad_kps.csv' in report.failed['s2__t2']
    first = json.loads((out / 's0__t0.json').read_text())
    assert first['src_kps'] == [[5.0, 5.0], [20.0, 30.0]]
    rows = list(csv.reader((out / 's0__t0.csv').open()))
    assert rows[0] == ['src_x', 'src_y', 'trg_x', 'trg_y', 'confidence'] and len(rows) == 3
    assert len(json.loads((out / 's0__t0_2.json').read_text())['src_kps']) == 64  # 8 x 8 grid
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['failed'] == report.failed
    # a rerun skips what is done; a removed result is matched again
    (out / 's0__t0_2.json').unlink()
    again = match_pairs(model, read_pairs([pair_list]), out, progress=False)
    assert again.skipped == ['s0__t0'] and again.matched == ['s0__t0_2']


def test_the_match_pairs_command_reports_failures_and_progress(pair_list, tmp_path):
    done = corrkit('match-pairs', str(pair_list), '--model', TINY,
                   '--out-dir', str(tmp_path / 'out'))
    assert done.returncode == 1  # some pairs failed; the others are written
    assert 'error: pair s1__missing:' in done.stderr and 'ETA' in done.stderr
    assert '2 matched, 0 already done, 2 failed' in done.stdout
    assert (tmp_path / 'out' / 's0__t0.json').is_file()


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    from corrkit.apis import train
    from tests.test_train import options
    from corrkit.datasets.mini import make_mini_dataset
    root = make_mini_dataset(tmp_path_factory.mktemp('data') / 'mini', image_size=64,
                             views={'trn': 2, 'val': 1, 'test': 1}, num_keypoints=6)
    opts = options(root, 1)
    work_dir = tmp_path_factory.mktemp('work')
    train(f'configs/{TINY}.py', str(work_dir), opts)
    return work_dir, opts


def test_publish_strips_run_state_and_round_trips(trained, tmp_path, capsys):
    work_dir, opts = trained
    assert main(['publish', str(work_dir), str(tmp_path / 'pub' / f'{TINY}.pth')]) == 0
    out = capsys.readouterr().out
    path = Path(out.split('published: ')[1].split()[0])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.name == f'{TINY}-{digest[:8]}.pth' and f'Weights SHA256: {digest}' in out
    published = torch.load(path, weights_only=True)
    assert set(published) == {'meta', 'state_dict'}
    assert set(published['meta']) <= set(KEPT_META) | {'corrkit_version'}
    assert 'cfg' in published['meta'] and 'experiment_name' not in published['meta']
    source = torch.load(Path((work_dir / 'last_checkpoint').read_text().strip()),
                        weights_only=True)
    assert 'optimizer' in source and path.stat().st_size < 0.7 * Path(
        (work_dir / 'last_checkpoint').read_text().strip()).stat().st_size
    model = init_matcher(TINY, path, cfg_options={'model.backbone.pretrained': False})
    for key, value in model.state_dict().items():
        assert torch.equal(value, source['state_dict'][key]), key
    assert publish_model(path, tmp_path / 'again' / TINY) .name == path.name  # stable name


def test_publish_refuses_what_is_not_a_checkpoint(tmp_path):
    bare = tmp_path / 'bare.pth'
    torch.save({'weights': torch.zeros(1)}, bare)
    with pytest.raises(ValueError, match="holds no 'state_dict'"):
        publish_model(bare, tmp_path / 'x.pth')


def load_hubconf(repo):
    spec = importlib.util.spec_from_file_location('hubconf', repo / 'hubconf.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hubconf_has_an_entry_point_per_model_name(repo):
    hubconf = load_hubconf(repo)
    for name in model_names():
        entry = getattr(hubconf, name.replace('/', '_'))
        assert callable(entry) and name in entry.__doc__


def test_torch_hub_loads_models_from_the_local_repository(repo):
    model = torch.hub.load(str(repo), TINY, source='local')
    assert type(model).__name__ == 'CorrelationMatcher' and not model.training
    zero_shot = torch.hub.load(str(repo), 'zeroshot_mobilenetv2', source='local', pretrained=True)
    reference = init_matcher('zeroshot_mobilenetv2', checkpoint='auto')
    for (key, value), other in zip(zero_shot.state_dict().items(),
                                   reference.state_dict().values()):
        assert torch.equal(value, other), key
    with pytest.raises(WeightsError, match='no trained weights are published'):
        torch.hub.load(str(repo), 'transformatcher_spair', source='local', pretrained=True)


def test_pair_ids_stay_unique_and_clear_of_the_summary(tmp_path):
    listing = tmp_path / 'pairs.csv'
    listing.write_text('a.png,b.png\na.png,b.png\na.png,b_2.png\nsummary.png,x.png\n')
    assert [p.id for p in read_pairs([listing])] == ['a__b', 'a__b_2', 'a__b_2_2',
                                                     'summary__x']
    (tmp_path / 'src').mkdir(), (tmp_path / 'trg').mkdir()
    for folder in ('src', 'trg'):
        photo(tmp_path / folder / 'summary.png')
    assert [p.id for p in read_pairs([tmp_path / 'src', tmp_path / 'trg'])] == ['summary_2']
    photo(tmp_path / 'src' / 'summary.jpg')
    with pytest.raises(ValueError, match="share the name 'summary'"):
        read_pairs([tmp_path / 'src', tmp_path / 'trg'])
