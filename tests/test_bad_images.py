"""Images users may hand over: odd modes, broken files, tiny and huge sizes."""
import os
import re
import struct
import subprocess
import sys
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

import corrkit.utils.image as image_module
from corrkit.apis.demo import run_demo
from corrkit.datasets import SPairDataset
from corrkit.utils.image import MAX_PIXELS_ENV, load_image, max_image_pixels
from tests.datasets.fixtures import spair_pair, write_spair


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
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    path = tmp_path / 'big.png'
    Image.new('RGB', (100, 100)).save(path)
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)  # 10,000 pixels > 2 x the limit
    with pytest.raises(ValueError, match=r"image '.*big.png' is too large to open safely: "
                                         r'100 x 100 = 10,000 pixels, above the limit of 1,000'):
        load_image(path)
    assert Image.MAX_IMAGE_PIXELS == 1000  # Pillow's setting is left as it was


def write_bomb_png(path, width=12_000, height=12_000):
    """A black 1-bit PNG written chunk by chunk: 144 M pixels in about 17 KB, made in no time."""
    def chunk(kind, body):
        return (struct.pack('>I', len(body)) + kind + body
                + struct.pack('>I', zlib.crc32(kind + body)))
    rows = (b'\0' * (1 + (width + 7) // 8)) * height  # filter byte 0, then the packed bits
    header = struct.pack('>IIBBBBB', width, height, 1, 0, 0, 0, 0)  # 1 bit, grey
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header)
                     + chunk(b'IDAT', zlib.compress(rows, 9)) + chunk(b'IEND', b''))
    return path


@pytest.fixture
def no_decoding(monkeypatch):
    """Fails the test if any image is decoded."""
    def load(self):
        raise AssertionError(f'{self.size} image decoded')
    monkeypatch.setattr(ImageFile.ImageFile, 'load', load)


def bomb_message(path, limit):
    return (rf"image '{re.escape(str(path))}' is too large to open safely: 12000 x 12000 = "
            rf'144,000,000 pixels, above the limit of {limit:,} pixels \(not decoded\)\. '
            rf'If you trust the file, raise the limit: \${MAX_PIXELS_ENV}')


def test_a_bomb_below_twice_pillows_limit_is_refused_before_decoding(tmp_path, monkeypatch,
                                                                     no_decoding):
    """Pillow itself only warns for 144 M pixels (its error starts at 2 x 89 M)."""
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    path = write_bomb_png(tmp_path / 'bomb.png')
    assert path.stat().st_size < 40_000
    assert Image.MAX_IMAGE_PIXELS < 144_000_000 < 2 * Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no DecompressionBombWarning either
        with pytest.raises(ValueError, match=bomb_message(path, Image.MAX_IMAGE_PIXELS)):
            load_image(path)


def test_the_limit_is_configurable(tmp_path, monkeypatch, no_decoding):
    path = write_bomb_png(tmp_path / 'bomb.png')
    monkeypatch.setenv(MAX_PIXELS_ENV, '1_000_000')
    with pytest.raises(ValueError, match=bomb_message(path, 1_000_000)):
        load_image(path)
    monkeypatch.setattr(image_module, 'MAX_IMAGE_PIXELS', 2_000)  # the setting comes first
    assert max_image_pixels() == 2_000
    with pytest.raises(ValueError, match=bomb_message(path, 2_000)):
        load_image(path)
    for bad in ('lots', '-5', '0'):
        monkeypatch.setattr(image_module, 'MAX_IMAGE_PIXELS', None)
        monkeypatch.setenv(MAX_PIXELS_ENV, bad)
        with pytest.raises(ValueError, match=rf"\${MAX_PIXELS_ENV} must be a positive number "
                                             rf"of pixels or 'none', got '{bad}'"):
            load_image(path)


def test_a_raised_limit_opens_what_pillow_alone_would_refuse(tmp_path, monkeypatch):
    path = tmp_path / 'trusted.png'
    Image.new('RGB', (100, 100), (1, 2, 3)).save(path)
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)  # Pillow alone: an error
    for value in ('10000', 'none', 'None'):
        monkeypatch.setenv(MAX_PIXELS_ENV, value)
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            assert load_image(path).getpixel((5, 5)) == (1, 2, 3)
    monkeypatch.setenv(MAX_PIXELS_ENV, '9999')
    with pytest.raises(ValueError, match='100 x 100 = 10,000 pixels, above the limit of 9,999'):
        load_image(path)
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_a_dataset_refuses_a_bomb_by_name_before_decoding(tmp_path, monkeypatch, no_decoding):
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    root = write_spair(tmp_path, [spair_pair(src='a.jpg')])
    bomb = write_bomb_png(root / 'JPEGImages' / 'cat' / 'a.jpg')  # Pillow reads the contents
    dataset = SPairDataset(root, split='test', pipeline=[dict(type='LoadPairImages')])
    with pytest.raises(ValueError, match=bomb_message(bomb, Image.MAX_IMAGE_PIXELS)):
        dataset[0]


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
                          timeout=600, env={**os.environ, MAX_PIXELS_ENV: str(10**8)})
    assert done.returncode == 0, done.stderr[-2000:]
    width, height, peak_mb = map(int, done.stdout.split()[-3:])
    print(f'warp.png {width} x {height}, peak resident memory {peak_mb} MB')
    assert (width, height) == (2 * 1024 + 8, 1024)  # drawn at 1024 pixels a side
    assert peak_mb < 3000  # the 10,000 x 10,000 RGB image alone is 300 MB
