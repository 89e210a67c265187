"""Faults and fuzz for what users hand to corrkit (issue 27, item 7).

- ``match-pairs`` killed with SIGKILL at random points five times and resumed ends with
  the outputs of an uninterrupted run, and no partial file (slow).
- Corrupted and malformed images through ``load_image`` load as RGB or raise a
  ``ValueError`` / ``FileNotFoundError`` naming the file: 40 here by default, 500 and a
  sample through ``corrkit match`` (one ``error:`` line, no traceback) in the slow suite.
- Two ``match-pairs`` runs at once on one results folder both finish, and every result
  equals a single run's (slow).

Run the slow ones with ``pytest -m slow tests/test_fault_batch.py``.
"""
import csv
import io
import json
import os
import random
import signal
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from corrkit.apis import init_matcher
from corrkit.apis.batch import match_pairs
from corrkit.registry import MODELS
from corrkit.utils.image import load_image

from .conftest import TINY_MATCHER

TINY = 'transformatcher_tiny'
PAIRS = 12
KILLS = 5
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}


# ----------------------------------------------------------------------------- helpers
def picture(seed, size=(64, 48)):
    """A small image with some structure (blobs on noise), as a PIL image."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = rng.integers(0, 60, (h, w, 3)).astype(np.float64)
    for _ in range(4):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(4, 14)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] += rng.uniform(60, 190, 3)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def encoded(img, fmt):
    buffer = io.BytesIO()
    img.save(buffer, fmt)
    return buffer.getvalue()


def png_chunk(kind, data):
    return (struct.pack('>I', len(data)) + kind + data
            + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))


def png_with_size(png, width, height):
    """``png`` with its IHDR declaring ``width`` x ``height`` (a valid CRC)."""
    ihdr = bytearray(png[16:29])
    ihdr[0:8] = struct.pack('>II', width, height)
    return png[:8] + png_chunk(b'IHDR', bytes(ihdr)) + png[33:]


def flipped(data, rng, start, stop, count):
    data = bytearray(data)
    for _ in range(count):
        i = rng.randrange(start, min(stop, len(data)))
        data[i] ^= 1 << rng.randrange(8)
    return bytes(data)


KINDS = ('random bytes', 'truncated png', 'truncated jpeg', 'png header flips',
         'jpeg header flips', 'body flips', 'empty', 'text named .png', 'huge png header',
         'png without its end', 'jpeg named .png', 'other format flips')
#: Formats Pillow identifies by content whatever the suffix; a corrupted SGI header once
#: raised Pillow's own ValueError ('Unsupported SGI image mode'), which named no file.
OTHER_FORMATS = ('SGI', 'TIFF', 'BMP', 'GIF', 'WEBP', 'TGA', 'PCX', 'PPM', 'ICO')


def corrupted_images(folder, count, seed):
    """``count`` corrupted or malformed image files in ``folder``: ``[(path, kind), ...]``."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    originals = [picture(s) for s in range(3)]
    pngs = [encoded(img, 'PNG') for img in originals]
    jpegs = [encoded(img, 'JPEG') for img in originals]
    others = {fmt: encoded(originals[0].convert('P') if fmt == 'GIF' else originals[0], fmt)
              for fmt in OTHER_FORMATS}
    files = []
    for number in range(count):
        kind = KINDS[number % len(KINDS)]
        png, jpeg = rng.choice(pngs), rng.choice(jpegs)
        suffix = '.png'
        if kind == 'random bytes':
            data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 3000)))
            suffix = rng.choice(['.png', '.jpg', '.bmp', '.tif', '.webp', '.gif'])
        elif kind == 'truncated png':
            data = png[:rng.randrange(1, len(png))]
        elif kind == 'truncated jpeg':
            data, suffix = jpeg[:rng.randrange(1, len(jpeg))], '.jpg'
        elif kind == 'png header flips':
            data = flipped(png, rng, 0, 64, rng.randint(1, 4))
        elif kind == 'jpeg header flips':
            data, suffix = flipped(jpeg, rng, 0, 200, rng.randint(1, 4)), '.jpg'
        elif kind == 'body flips':
            base = rng.choice([png, jpeg])
            data = flipped(base, rng, 64, len(base), rng.randint(1, 20))
            suffix = '.png' if base is png else '.jpg'
        elif kind == 'empty':
            data = b''
            suffix = rng.choice(['.png', '.jpg'])
        elif kind == 'text named .png':
            data = rng.choice([b'not an image\n', b'<html><body>404</body></html>',
                               'ünïcödé text'.encode(), b'\x89PNG\r\n\x1a\n' + b'hello'])
        elif kind == 'huge png header':
            width, height = rng.choice([(100_000, 100_000), (2 ** 31 - 1, 2 ** 31 - 1),
                                        (65_535, 65_535), (1, 2 ** 31 - 1),
                                        (rng.randrange(10_000, 60_000),
                                         rng.randrange(10_000, 60_000))])
            data = png_with_size(png, width, height)
        elif kind == 'png without its end':
            data = png[:-12]  # no IEND chunk
        elif kind == 'jpeg named .png':  # Pillow reads the content, so it loads
            data = jpeg
        else:
            fmt = OTHER_FORMATS[(number // len(KINDS)) % len(OTHER_FORMATS)]
            data, suffix = others[fmt], f'.{fmt.lower()}'
            data = flipped(data, rng, 0, rng.choice([16, 100, len(data)]), rng.randint(1, 6))
        path = folder / f'{number:03d}_{kind.replace(" ", "_")}{suffix}'
        path.write_bytes(data)
        files.append((path, kind))
    return files


def check_loads_or_refuses_clearly(files):
    """Every file loads as RGB, or raises ValueError/FileNotFoundError naming it."""
    outcomes = {}
    for path, kind in files:
        try:
            img = load_image(path)
        except (ValueError, FileNotFoundError) as err:
            assert str(path) in str(err), f'{kind}: {path.name}: {err!r} does not name the file'
            outcomes[path] = 'refused'
        except BaseException as err:  # noqa: BLE001 (the point of the test)
            pytest.fail(f'{kind}: {path.name} raised {type(err).__name__}: {err}')
        else:
            assert img.mode == 'RGB' and img.width > 0 and img.height > 0, (kind, path.name)
            outcomes[path] = 'loaded'
    return outcomes


# ----------------------------------------------------------------------------- fuzz
@pytest.mark.filterwarnings('ignore::UserWarning')  # Pillow's about corrupt EXIF or tags
def test_corrupted_images_load_or_are_refused_clearly(tmp_path):
    files = corrupted_images(tmp_path, 40, seed=1)
    outcomes = check_loads_or_refuses_clearly(files)
    assert list(outcomes.values()).count('refused') >= 20, outcomes
    sgi = bytearray(encoded(picture(0), 'SGI'))
    sgi[10:12] = (7).to_bytes(2, 'big')  # 7 channels: Pillow's own ValueError, no file name
    (tmp_path / 'odd.sgi').write_bytes(bytes(sgi))
    with pytest.raises(ValueError, match=r"'.*odd\.sgi' is not a readable image"):
        load_image(tmp_path / 'odd.sgi')
    missing = tmp_path / 'gone.png'
    with pytest.raises(FileNotFoundError, match='gone.png'):
        load_image(missing)


@pytest.mark.slow
@pytest.mark.filterwarnings('ignore::UserWarning')
def test_500_corrupted_images_and_the_match_command_give_clear_errors(tmp_path):
    files = corrupted_images(tmp_path / 'bad', 500, seed=2)
    outcomes = check_loads_or_refuses_clearly(files)
    refused = [(path, kind) for path, kind in files if outcomes[path] == 'refused']
    assert len(refused) >= 300, f'{len(refused)} of 500 refused'
    good = tmp_path / 'good.png'
    picture(99).save(good)
    sample = random.Random(3).sample(refused, 20)
    for number, (path, kind) in enumerate(sample):
        images = [str(path), str(good)] if number % 2 == 0 else [str(good), str(path)]
        done = subprocess.run([sys.executable, '-m', 'corrkit.cli', 'match', *images,
                               '--model', TINY, '--out-dir', str(tmp_path / f'out{number}')],
                              capture_output=True, text=True, timeout=300, env=ENV)
        assert done.returncode == 1, (kind, path.name, done.returncode, done.stderr[-2000:])
        errors = [line for line in done.stderr.splitlines() if line.startswith('error: ')]
        assert len(errors) == 1 and path.name in errors[0], (kind, done.stderr[-2000:])
        assert 'Traceback' not in done.stderr, (kind, done.stderr[-2000:])


# ----------------------------------------------------------------------------- match-pairs
@pytest.fixture
def pair_list(tmp_path):
    """``PAIRS`` pairs of 64 x 48 images (some images in several pairs), a keypoint file."""
    folder = tmp_path / 'images'
    folder.mkdir()
    for i in range(PAIRS):
        picture(i).save(folder / f's{i}.png')
        picture(100 + i).save(folder / f't{i}.jpg')
    (folder / 'kps.csv').write_text('x,y\n3,4\n30.5,20\n60,40\n')
    rows = ['source,target,kps'] + [f's{i}.png,t{i}.jpg,{"kps.csv" if i % 3 == 0 else ""}'
                                    for i in range(PAIRS)]
    rows.append('s0.png,t1.jpg,')  # an image in two pairs, a repeated name
    listing = folder / 'pairs.csv'
    listing.write_text('\n'.join(rows) + '\n')
    return listing


def match_pairs_command(listing, out):
    """The command, with fixed weights (without a checkpoint each process has its own random
    weights, and a resumed run rightly matches every pair again)."""
    weights = listing.parent / 'tiny.pth'
    if not weights.is_file():
        torch.manual_seed(0)
        torch.save({'state_dict': init_matcher(TINY).state_dict()}, weights)
    return [sys.executable, '-m', 'corrkit.cli', 'match-pairs', str(listing), '--model', TINY,
            '--checkpoint', str(weights), '--out-dir', str(out), '--no-progress']


def run_match_pairs(listing, out):
    done = subprocess.run(match_pairs_command(listing, out), capture_output=True, text=True,
                          timeout=600, env=ENV)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def results(out):
    return sorted(p.stem for p in out.glob('*.json') if p.name != 'summary.json')


def assert_complete_and_equal(out, reference):
    """No temporaries; every JSON parses; ``out`` holds ``reference``'s results, equal."""
    assert not list(out.glob('.*.tmp')), sorted(p.name for p in out.glob('.*.tmp'))
    assert not [p for p in out.iterdir() if p.name.startswith('.')]
    json.loads((out / 'summary.json').read_text())
    assert results(out) == results(reference)
    for pair_id in results(reference):
        a = json.loads((reference / f'{pair_id}.json').read_text())
        b = json.loads((out / f'{pair_id}.json').read_text())
        assert a['src_kps'] == b['src_kps'] and a['inputs'] == b['inputs'], pair_id
        for key in ('trg_kps', 'confidence'):
            np.testing.assert_allclose(b[key], a[key], atol=1e-5, rtol=0, err_msg=pair_id)
        rows_a = list(csv.reader((reference / f'{pair_id}.csv').open()))
        rows_b = list(csv.reader((out / f'{pair_id}.csv').open()))
        assert rows_a[0] == rows_b[0] and len(rows_a) == len(rows_b), pair_id
        np.testing.assert_allclose(np.array(rows_b[1:], float), np.array(rows_a[1:], float),
                                   atol=1e-5, rtol=0, err_msg=pair_id)


def test_a_killed_writers_temporaries_are_removed_and_a_live_ones_kept(tmp_path):
    """What a SIGKILL in the middle of a result's atomic write leaves is cleared by the next
    run; the temporary of a run still writing into the folder (a live process) is kept."""
    torch.manual_seed(0)
    model = MODELS.build(TINY_MATCHER).eval()
    gone_pid = subprocess.Popen([sys.executable, '-c', 'pass'])
    gone_pid.wait()  # ended: its id names no process (until the system reuses it)
    out = tmp_path / 'out'
    out.mkdir()
    dead = [out / f'.p.json.{gone_pid.pid}.0a1b2c3d.tmp', out / f'.p.csv.{gone_pid.pid}.1.tmp']
    live = out / f'.q.json.{os.getpid()}.0a1b2c3d.tmp'
    for path in dead + [live]:
        path.write_text('{"half": ')
    match_pairs(model, [], out, progress=False)
    assert not any(p.exists() for p in dead) and live.exists()


@pytest.mark.slow
def test_killed_and_resumed_match_pairs_ends_with_the_uninterrupted_results(pair_list,
                                                                            tmp_path):
    straight = tmp_path / 'straight'
    run_match_pairs(pair_list, straight)
    assert len(results(straight)) == PAIRS + 1

    rng = random.Random(11)
    out = tmp_path / 'killed'
    kills = []
    for attempt in range(KILLS + 1):
        log_path = tmp_path / f'launch_{attempt}.log'
        before = len(results(out)) if out.is_dir() else 0
        with open(log_path, 'w') as log:
            proc = subprocess.Popen(match_pairs_command(pair_list, out), stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, env=ENV)
            if attempt < KILLS:
                if rng.random() < 0.7:  # once a new result appeared, a moment later
                    deadline = time.monotonic() + 120
                    while (proc.poll() is None and time.monotonic() < deadline
                           and (not out.is_dir() or len(results(out)) <= before)):
                        time.sleep(0.005)
                    time.sleep(rng.uniform(0.0, 0.05))
                else:  # anywhere: starting, reading the model, matching, writing
                    time.sleep(rng.uniform(0.5, 4.0))
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait(timeout=600)
        if attempt < KILLS and code == -signal.SIGKILL:
            kills.append(len(results(out)) if out.is_dir() else 0)
            for path in out.glob('*.json') if out.is_dir() else ():  # every result whole
                json.loads(path.read_text())
            continue
        assert code == 0, log_path.read_text(errors='replace')[-3000:]
        if attempt < KILLS:  # finished before it could be killed
            break
    assert len(kills) >= 3, f'the runs ended before they could be killed: {kills}'
    print(f'{len(kills)} kills; results on disk at each: {kills}')
    if len(results(out)) < PAIRS + 1 or list(out.glob('.*.tmp')):
        run_match_pairs(pair_list, out)  # the final resume, if the last one was killed
    assert_complete_and_equal(out, straight)
    again = run_match_pairs(pair_list, out)  # and a rerun has nothing left to do
    assert f'0 matched, {PAIRS + 1} already done, 0 failed' in again.stdout


@pytest.mark.slow
def test_two_concurrent_match_pairs_runs_on_one_folder_lose_and_corrupt_nothing(pair_list,
                                                                                tmp_path):
    single = tmp_path / 'single'
    run_match_pairs(pair_list, single)
    shared = tmp_path / 'shared'
    procs = [subprocess.Popen(match_pairs_command(pair_list, shared), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(2)]
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stdout[-2000:] + stderr[-3000:]
    assert_complete_and_equal(shared, single)
