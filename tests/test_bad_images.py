"""Images users may hand over: odd modes, broken files, tiny and huge sizes."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from corrkit.apis.demo import run_demo
from corrkit.utils.image import load_image


def test_sixteen_bit_and_float_images_become_rgb_scaled_to_their_maximum(tmp_path):
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    path = tmp_path / 'depth16.png'
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith('I')
    rgb = np.asarray(load_image(path))
    assert rgb.shape == (8, 8, 3) and rgb.max() == 255 and rgb[0, 0, 0] == 0
    floats = Image.fromarray(np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8), mode='F')
    assert np.asarray(load_image(floats)).max() == 255  # not clipped to a black image


@pytest.mark.parametrize('mode', ['LA', 'PA', 'CMYK', '1'])
def test_other_modes_become_rgb(mode):
    image = Image.new('RGB', (6, 5), (200, 30, 30)).convert(mode)
    assert load_image(image).mode == 'RGB' and load_image(image).size == (6, 5)


def test_broken_files_are_named(tmp_path):
    photo = tmp_path / 'photo.jpg'
    Image.new('RGB', (64, 64), (10, 200, 10)).save(photo, quality=90)
    truncated = tmp_path / 'truncated.jpg'
    truncated.write_bytes(photo.read_bytes()[:300])
    text = tmp_path / 'notes.jpg'
    text.write_text('not an image')
    for path in (truncated, text):
        with pytest.raises(ValueError, match=f"'{path}' is not a readable image"):
            load_image(path)
    with pytest.raises(FileNotFoundError, match="image file '.*missing.jpg' does not exist"):
        load_image(tmp_path / 'missing.jpg')


def test_decompression_bombs_are_refused_by_name(tmp_path, monkeypatch):
    path = tmp_path / 'big.png'
    Image.new('RGB', (100, 100)).save(path)
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)  # 10,000 pixels > 2 x the limit
    with pytest.raises(ValueError, match=r"image '.*big.png' is too large to open safely"):
        load_image(path)


def test_demo_on_an_eight_pixel_image(repo, tmp_path):
    tiny = tmp_path / 'tiny.png'
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3), np.uint8)).save(tiny)
    paths = run_demo(tiny, tiny, repo / 'configs/transformatcher_tiny.py', out_dir=tmp_path,
                     cfg_options={'model.backbone.pretrained': False})
    assert Image.open(paths['matches']).height > 0 and paths['json'].is_file()


PROBE = """
import resource, sys
from corrkit.apis.demo import run_demo
paths = run_demo(sys.argv[1], sys.argv[2], 'configs/transformatcher_tiny.py', out_dir=sys.argv[3],
                 cfg_options={'model.backbone.pretrained': False})
from PIL import Image
print(*Image.open(paths['warp']).size, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def test_demo_on_a_ten_thousand_pixel_photo_stays_small(repo, tmp_path):
    huge = tmp_path / 'huge.png'
    grid = np.indices((100, 100)).sum(0) % 2 * 255  # a checkerboard, enlarged: compresses well
    Image.fromarray(grid.astype(np.uint8)).resize((10_000, 10_000), Image.NEAREST).save(huge)
    done = subprocess.run([sys.executable, '-W', 'ignore', '-c', PROBE, str(huge), str(huge),
                           str(tmp_path / 'out')], cwd=repo, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    width, height, peak_mb = map(int, done.stdout.split()[-3:])
    print(f'warp.png {width} x {height}, peak resident memory {peak_mb} MB')
    assert (width, height) == (2 * 1024 + 8, 1024)  # drawn at 1024 pixels a side
    assert peak_mb < 3000  # the 10,000 x 10,000 RGB image alone is 300 MB
