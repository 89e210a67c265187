"""The command-line tools, run as users type them (from the repository root)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
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


@pytest.mark.parametrize('src_spec, trg_spec, with_kps', [
    (((60, 80, 4), 'RGBA', 'png'), ((45, 45), 'L', 'jpg'), True),
    (((200, 3000, 3), 'RGB', 'jpg'), ((70, 50, 3), 'P', 'png'), False),
], ids=['rgba-to-grey-with-kps', 'strip-to-palette-grid'])
def test_demo_writes_its_three_files_for_odd_images(repo, tmp_path, src_spec, trg_spec, with_kps):
    rng = np.random.default_rng(1)
    paths = []
    for name, (shape, mode, ext) in (('a', src_spec), ('b', trg_spec)):
        array = rng.integers(0, 255, shape, dtype=np.uint8)
        image = Image.fromarray(array) if mode != 'P' else Image.fromarray(array).convert('P')
        paths.append(tmp_path / f'{name}.{ext}')
        image.convert(mode).save(paths[-1])
    out = tmp_path / 'out'
    extra = []
    if with_kps:
        (tmp_path / 'kps.csv').write_text('x,y\n10,10\n70,50\n')
        extra = ['--kps', str(tmp_path / 'kps.csv')]
    res = run(repo, 'tools/demo.py', *map(str, paths), '--config',
              'configs/transformatcher_tiny.py', *extra, '--out-dir', str(out))
    assert res.returncode == 0, res.stderr
    data = json.loads((out / 'matches.json').read_text())
    if with_kps:
        assert data['src_kps'] == [[10.0, 10.0], [70.0, 50.0]] and len(data['trg_kps']) == 2
    else:
        assert len(data['src_kps']) == 64  # the default 8 x 8 grid
    assert Image.open(out / 'matches.png').size[1] == 480
    trg = Image.open(paths[1])
    warp = Image.open(out / 'warp.png')
    assert warp.size == (2 * trg.width + 8, trg.height)  # warped source | target


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
    measured = ("split 'test' of SPairDataset at " f"{data}: 6 pairs, categories chelsea, "
                "grace_hopper, motorcycle")
    assert report['measured_on']['split'] == 'test' and f'measured on {measured}' in tested.stdout
    compared = run(repo, 'tools/compare_pck.py', f"zero-shot={work / 'pck_bbox.json'}",
                   f"trained={work / 'pck_bbox.json'}")
    assert compared.returncode == 0, compared.stderr
    lines = compared.stdout.splitlines()
    assert lines[0] == "PCK (%), threshold 'bbox', averaged per pair"
    assert lines[1] == f'measured on {measured}' and lines[2].startswith('model ')


def test_compare_pck_says_what_reports_measured_and_warns_when_it_differs(repo, tmp_path):
    base = dict(threshold='bbox', average='pair', alphas=[0.1], num_pairs=2,
                overall={'0.1': 50.0})
    where = dict(dataset='SPairDataset', data_root='data/mini-spair', pairs=2)
    reports = {'old': base,  # written before reports said what they measured
               'val': dict(base, measured_on=dict(where, split='val',
                                                  categories=['camera', 'coins'])),
               'test': dict(base, measured_on=dict(where, split='test',
                                                   categories=['chelsea', 'grace_hopper']))}
    for name, report in reports.items():
        (tmp_path / f'{name}.json').write_text(json.dumps(report))
    old = run(repo, 'tools/compare_pck.py', f"a={tmp_path / 'old.json'}",
              f"b={tmp_path / 'old.json'}")
    assert old.returncode == 0, old.stderr
    assert old.stdout.splitlines()[1].startswith('model ')  # nothing to say, nothing said
    mixed = run(repo, 'tools/compare_pck.py', *(f'{n}={tmp_path / n}.json' for n in reports))
    assert mixed.returncode == 0, mixed.stderr
    assert mixed.stdout.splitlines()[1:5] == [
        'measured on: not recorded in the report (old)',
        "measured on split 'val' of SPairDataset at data/mini-spair: 2 pairs, categories "
        "camera, coins (val)",
        "measured on split 'test' of SPairDataset at data/mini-spair: 2 pairs, categories "
        "chelsea, grace_hopper (test)",
        'warning: different splits or datasets; these numbers are not comparable']
    for name, digest in (('val', 'a' * 16), ('test', 'b' * 16)):  # then the pairs differ too
        reports[name]['pairs_digest'] = digest
        (tmp_path / f'{name}.json').write_text(json.dumps(reports[name]))
    refused = run(repo, 'tools/compare_pck.py', f"val={tmp_path / 'val.json'}",
                  f"test={tmp_path / 'test.json'}")
    assert refused.returncode == 1 and 'Traceback' not in refused.stderr
    assert "val on split 'val' of SPairDataset" in refused.stderr
    assert "test on split 'test' of SPairDataset" in refused.stderr


def test_test_tool_names_a_missing_dataset(repo, tmp_path):
    out = run(repo, 'tools/test.py', 'configs/transformatcher_tiny.py', '--work-dir',
              str(tmp_path), '--cfg-options', f'test_dataloader.dataset.data_root={tmp_path}/x',
              'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
              'model.backbone.pretrained=False')
    assert out.returncode == 1
    assert 'Traceback' not in out.stderr
    assert 'download_datasets.py' in out.stderr and str(tmp_path / 'x') in out.stderr


@pytest.mark.parametrize('content, message', [
    ('10,10\n500,20\n', 'point 2, [500.0, 20.0], lies outside the 80 x 60 source image'),
    ('[[10, 10], [NaN, 3]]', 'point 2 is [nan, 3.0]; coordinates must be finite'),
], ids=['outside', 'nan'])
def test_demo_names_a_bad_keypoint(repo, tmp_path, content, message):
    image = tmp_path / 'a.png'
    Image.new('RGB', (80, 60)).save(image)
    kps = tmp_path / ('kps.csv' if content[0].isdigit() else 'kps.json')
    kps.write_text(content)
    res = run(repo, 'tools/demo.py', str(image), str(image), '--kps', str(kps), '--config',
              'configs/transformatcher_tiny.py', '--out-dir', str(tmp_path / 'out'))
    assert res.returncode == 1 and message in res.stderr, res.stderr
    assert 'Traceback' not in res.stderr and not (tmp_path / 'out' / 'matches.png').exists()


def test_stereo_check_writes_the_pairs_and_reports_each_config(repo, tmp_path):
    out = run(repo, 'tools/stereo_check.py', 'configs/transformatcher_tiny.py',
              'configs/keypoint_mobilenetv2_zeroshot.py', '--data-root', str(tmp_path / 'data'),
              '--work-dir', str(tmp_path / 'work'), '--cfg-options',
              'model.backbone.pretrained=false', 'test_dataloader.num_workers=0',
              'test_dataloader.persistent_workers=false')
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    table = lines[-5:]
    assert table[0].startswith('model ') and 'PCK@0.01 (7.4 px)' in table[0]
    assert table[-1].startswith('report: ')
    assert [line.split()[0] for line in table[1:4]] == [
        'zero', 'transformatcher_tiny', 'keypoint_mobilenetv2_zeroshot']
    report = json.loads((tmp_path / 'work' / 'stereo_check.json').read_text())
    assert report['frame'] == 'original' and report['alphas'] == [0.01, 0.02, 0.05]
    floor = report['results']['zero motion']
    assert floor['PCK@0.01'] == 0 and 0 < floor['PCK@0.05'] < 100
    pck = json.loads((tmp_path / 'work' / 'transformatcher_tiny' / 'pck_bbox.json').read_text())
    assert pck['frame'] == 'original' and pck['num_pairs'] == 2
    assert report['results']['transformatcher_tiny']['PCK@0.05'] == pytest.approx(
        pck['overall']['0.05'])


def test_stereo_check_refuses_a_checkpoint_for_several_configs(repo, tmp_path):
    out = run(repo, 'tools/stereo_check.py', 'configs/transformatcher_tiny.py',
              'configs/ncnet_spair.py', '--checkpoint', 'x.pth', '--data-root',
              str(tmp_path / 'data'))
    assert out.returncode == 1 and 'Traceback' not in out.stderr
    assert '--checkpoint needs exactly one config, got 2' in out.stderr


def test_the_gpu_benchmark_script_runs_its_plumbing_on_a_cpu(repo, tmp_path):
    """tools/gpu_benchmark.sh is for a GPU; DEVICE=cpu with the tiny model checks it runs."""
    env = dict(os.environ, DEVICE='cpu', CONFIG='configs/transformatcher_tiny.py', BATCH='2',
               PYTHON=sys.executable, OUT=str(tmp_path))
    done = subprocess.run(['bash', 'tools/gpu_benchmark.sh'], cwd=repo, capture_output=True,
                          text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    report = (tmp_path / 'fp32' / 'benchmark.md').read_text()
    assert '`transformatcher_tiny`' in report and 'b2' in report
