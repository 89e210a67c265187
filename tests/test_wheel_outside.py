"""Issue 16's end-to-end check: the wheel in a fresh virtual environment, outside the repository.

Slow (it installs torch and the other dependencies into a new environment): run with
``pytest -m slow tests/test_wheel_outside.py -s``; it prints the wheel's size and the
time from ``pip install`` to the first match.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import numpy as np
import pytest

from tests.visualization.test_viewer import MAGENTA_CENTROID, embedded
from tests.visualization.test_viewer_pages import click_source

pytestmark = pytest.mark.slow


def run(cmd, cwd, timeout=1200, env=None):
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)
    assert done.returncode == 0, f'{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}'
    return done


def test_the_wheel_works_without_the_repository(repo, tmp_path, browser_page):
    skimage = pytest.importorskip('skimage')  # photos from an installed package
    photos = Path(skimage.data_dir)
    dist = tmp_path / 'dist'
    run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q',
         str(repo), '-w', str(dist)], repo)
    wheel = next(dist.glob('corrkit-*.whl'))
    outside = tmp_path / 'outside'  # nothing of the repository on any path from here
    outside.mkdir()
    venv.create(tmp_path / 'venv', with_pip=True)
    bin_dir = tmp_path / 'venv' / 'bin'
    env = {'PATH': f'{bin_dir}:/usr/bin:/bin', 'HOME': os.environ.get('HOME', '/root'),
           'HF_HUB_OFFLINE': '1'}
    if 'TORCH_HOME' in os.environ:
        env['TORCH_HOME'] = os.environ['TORCH_HOME']

    start = time.perf_counter()
    run([str(bin_dir / 'pip'), 'install', '-q', str(wheel)], outside, env=env)
    installed = time.perf_counter() - start
    listing = run([str(bin_dir / 'corrkit'), 'list'], outside, env=env).stdout
    out = outside / 'out'
    matched = run([str(bin_dir / 'corrkit'), 'match', str(photos / 'astronaut.png'),
                   str(photos / 'coffee.png'), '--model', 'zeroshot_mobilenetv2', '--html',
                   '--out-dir', str(out)], outside, env=env)
    first_match = time.perf_counter() - start
    print(f'\nwheel {wheel.name}: {wheel.stat().st_size / 1024:.0f} kB; pip install '
          f'{installed:.0f} s; pip install to first match {first_match:.0f} s')

    names = [line.split()[0] for line in listing.splitlines() if line.strip()]
    assert 'transformatcher_spair' in names and 'zeroshot_mobilenetv2' in names
    assert len(names) >= 30
    assert 'html: ' in matched.stdout
    result = json.loads((out / 'matches.json').read_text())
    assert len(result['trg_kps']) == 64 and len(result['confidence']) == 64
    page_file = out / 'matches.html'
    assert str(bin_dir.parent) in run(
        [str(bin_dir / 'python'), '-c', 'import corrkit; print(corrkit.__file__)'],
        outside, env=env).stdout  # the installed package, not the repository's

    page, errors = browser_page
    data = embedded(page_file)
    page.goto(page_file.as_uri())
    page.wait_for_function('document.body.dataset.ready === "true"', timeout=10_000)
    k = len(data['grid']['src']) // 2
    click_source(page, np.array(data['grid']['src'][k]))
    expected = data['grid']['trg'][k]
    marker = page.locator('#trg-marker')
    assert marker.get_attribute('data-index') == str(k)
    np.testing.assert_allclose([float(marker.get_attribute(a)) for a in ('data-x', 'data-y')],
                               expected, atol=1.0)
    drawn = page.evaluate(MAGENTA_CENTROID, ['trg-overlay', *map(round, expected)])
    assert drawn is not None
    assert not errors

    offline = subprocess.run(
        [str(bin_dir / 'python'), '-c', "from corrkit.apis import init_matcher\n"
         "init_matcher('transformatcher_spair', checkpoint='auto')"],
        cwd=outside, capture_output=True, text=True, timeout=300, env=env)
    assert offline.returncode != 0
    message = offline.stderr.strip().splitlines()[-1]
    assert message.startswith('corrkit.errors.WeightsError: no trained weights are published')
    assert 'https://huggingface.co/timm/resnet101.tv_in1k/resolve/main/model.safetensors' in message
    assert 'corrkit train transformatcher_spair' in message

    # the plugin guide's package outside the repository: its config inherits a shipped
    # recipe by name ('corrkit::NAME.py', from the wheel's .mim) and imports its plugin
    example = outside / 'my-refiners'
    shutil.copytree(repo / 'docs' / 'examples' / 'my-refiners', example)
    loaded = run([str(bin_dir / 'python'), '-c', "from corrkit.config import load_config\n"
                  "cfg = load_config('configs/mutual_mobilenetv2_mini.py')\n"
                  "import mutual_refiner, corrkit\n"
                  "print(cfg.model.refiner.type, cfg.train_cfg.max_epochs, "
                  "mutual_refiner.__file__, corrkit.__file__)"], example, env=env).stdout.split()
    assert loaded[:2] == ['MutualMatchRefiner', '6']
    assert loaded[2].startswith(str(example)) and loaded[3].startswith(str(bin_dir.parent))

    # the refiner's fused kernel builds from the C source the wheel carries
    kernels = tmp_path / 'kernels'
    fused = run([str(bin_dir / 'python'), '-c', "import torch\n"
                 "from corrkit.models.refiners import MatchToMatchRefiner\n"
                 "refiner = MatchToMatchRefiner(in_channels=3, depth=1).eval()\n"
                 "with torch.inference_mode():\n"
                 "    assert refiner.inference_kernel(torch.zeros(1, 3, 16)) is not None\n"
                 "    print(tuple(refiner(torch.rand(1, 3, 2, 2, 2, 2)).shape))"],
                outside, env={**env, 'CORRKIT_KERNEL_CACHE': str(kernels)})
    assert fused.stdout.strip() == '(1, 1, 2, 2, 2, 2)'
    # one library and its record (size and SHA-256, checked before loading)
    assert sorted(p.suffix for p in kernels.iterdir()) == ['.json', '.so']
