"""The command-line tools, run as users type them (from the repository root)."""
import json
import subprocess
import sys

import numpy as np
from PIL import Image


def run(repo, *args):
    return subprocess.run([sys.executable, *args], cwd=repo, capture_output=True, text=True,
                          timeout=300)


def test_list_components_includes_plugins_of_a_config(repo):
    plain = run(repo, 'tools/list_components.py')
    assert plain.returncode == 0, plain.stderr
    assert 'MatchToMatchRefiner' in plain.stdout and 'LayerWeightedRefiner' not in plain.stdout
    with_plugin = run(repo, 'tools/list_components.py', 'configs/plugin_layer_weighted_refiner.py')
    assert with_plugin.returncode == 0, with_plugin.stderr
    assert 'LayerWeightedRefiner' in with_plugin.stdout


def test_demo_writes_matches_for_user_images(repo, tmp_path):
    rng = np.random.default_rng(1)
    src, trg = tmp_path / 'a.png', tmp_path / 'b.jpg'
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(src)
    Image.fromarray(rng.integers(0, 255, (45, 45), dtype=np.uint8)).convert('L').save(trg)
    kps = tmp_path / 'kps.csv'
    kps.write_text('x,y\n10,10\n70,50\n')
    out = tmp_path / 'out'
    res = run(repo, 'tools/demo.py', str(src), str(trg), '--config',
              'configs/transformatcher_tiny.py', '--kps', str(kps), '--out-dir', str(out))
    assert res.returncode == 0, res.stderr
    data = json.loads((out / 'matches.json').read_text())
    assert data['src_kps'] == [[10.0, 10.0], [70.0, 50.0]] and len(data['trg_kps']) == 2
    assert Image.open(out / 'matches.png').size[1] == 480


def test_demo_reports_user_errors_without_traceback(repo, tmp_path):
    res = run(repo, 'tools/demo.py', str(tmp_path / 'nope.png'), str(tmp_path / 'nope2.png'),
              '--config', 'configs/transformatcher_tiny.py')
    assert res.returncode == 1
    assert 'nope.png' in res.stderr and 'Traceback' not in res.stderr


def test_plugin_config_builds_in_a_fresh_process_from_elsewhere(repo, tmp_path):
    """custom_imports finds plugins/ next to the config, without the test suite's sys.path."""
    code = ('from corrkit.apis import init_matcher; '
            f"m = init_matcher({str(repo / 'configs' / 'plugin_layer_weighted_refiner.py')!r}, "
            "cfg_options={'model.backbone.pretrained': False}); "
            'print(type(m.refiner).__module__)')
    res = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == 'plugins.layer_weighted_refiner.layer_weighted'


def test_make_mini_dataset_then_test_a_config_on_it(repo, tmp_path):
    data = tmp_path / 'mini'
    made = run(repo, 'tools/make_mini_dataset.py', '--out-dir', str(data), '--views-trn', '1',
               '--views-val', '1', '--views-test', '2', '--image-size', '96')
    assert made.returncode == 0, made.stderr
    assert 'test 6' in made.stdout
    work = tmp_path / 'work'
    tested = run(repo, 'tools/test.py', 'configs/transformatcher_tiny.py',
                 '--work-dir', str(work), '--cfg-options',
                 f'test_dataloader.dataset.data_root={data}', 'test_dataloader.num_workers=0',
                 'test_dataloader.persistent_workers=False', 'model.backbone.pretrained=False')
    assert tested.returncode == 0, tested.stderr
    assert 'PCK@0.1:' in tested.stdout
    report = json.loads((work / 'pck_bbox.json').read_text())
    assert report['num_pairs'] == 6 and set(report['per_category']) == {
        'chelsea', 'grace_hopper', 'motorcycle'}
    assert {'viewpoint_variation', 'scale_variation'} <= set(report['per_difficulty'])


def test_test_tool_names_a_missing_dataset(repo, tmp_path):
    out = run(repo, 'tools/test.py', 'configs/transformatcher_tiny.py', '--work-dir',
              str(tmp_path), '--cfg-options', f'test_dataloader.dataset.data_root={tmp_path}/x',
              'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
              'model.backbone.pretrained=False')
    assert out.returncode == 1
    assert 'Traceback' not in out.stderr
    assert 'download_datasets.py' in out.stderr and str(tmp_path / 'x') in out.stderr
