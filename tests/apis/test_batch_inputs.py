"""Batch results belong to their inputs: a rerun skips a pair only when the images, the
keypoints, the model and the precision are those its result records."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from corrkit.apis.batch import (MAX_ID_BYTES, ImagePair, match_pairs, model_fingerprint,
                                read_pairs)
from corrkit.registry import MODELS

from ..conftest import TINY_MATCHER


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return MODELS.build(TINY_MATCHER).eval()


def photo(path, seed, size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def folder_pairs(root, seed):
    for name in ('a', 'b'):
        photo(root / 'src' / f'{name}.png', seed)
        photo(root / 'trg' / f'{name}.png', seed + 1)
    return read_pairs([root / 'src', root / 'trg'])


def test_a_result_from_other_images_of_the_same_names_is_replaced(model, tmp_path):
    out = tmp_path / 'out'
    first = match_pairs(model, folder_pairs(tmp_path / 'one', 0), out, progress=False)
    assert first.matched == ['a', 'b'] and not first.replaced
    again = match_pairs(model, folder_pairs(tmp_path / 'one', 0), out, progress=False)
    assert again.skipped == ['a', 'b'] and not again.matched  # the same inputs: resumed
    other = match_pairs(model, folder_pairs(tmp_path / 'two', 5), out, progress=False)
    assert other.matched == other.replaced == ['a', 'b'] and not other.skipped
    recorded = json.loads((out / 'a.json').read_text())['inputs']
    assert recorded['source']['path'].endswith('two/src/a.png')
    assert json.loads((out / 'summary.json').read_text())['replaced'] == ['a', 'b']


def test_other_weights_keypoints_or_precision_match_again(model, tmp_path):
    out = tmp_path / 'out'
    src, trg = photo(tmp_path / 's.png', 0), photo(tmp_path / 't.png', 1)
    kps = tmp_path / 'kps.csv'
    kps.write_text('1,1\n5,5\n')
    pairs = [ImagePair('p', src, trg, kps)]
    match_pairs(model, pairs, out, progress=False)
    kps.write_text('2,2\n6,6\n')  # same file name, other points
    assert match_pairs(model, pairs, out, progress=False).replaced == ['p']
    torch.manual_seed(1)
    retrained = MODELS.build(TINY_MATCHER).eval()
    assert model_fingerprint(retrained) != model_fingerprint(model)
    assert match_pairs(retrained, pairs, out, progress=False).replaced == ['p']
    assert match_pairs(retrained, pairs, out, 'bf16', progress=False).replaced == ['p']
    assert match_pairs(retrained, pairs, out, 'bf16', progress=False).skipped == ['p']


def test_long_names_get_capped_ids_and_the_batch_goes_on(model, tmp_path):
    long = 'x' * 200
    src, trg = photo(tmp_path / f'{long}.png', 0), photo(tmp_path / f'{long}y.png', 1)
    (tmp_path / 'pairs.csv').write_text(f'{src.name},{trg.name}\n{trg.name},{src.name}\n')
    pairs = read_pairs([tmp_path / 'pairs.csv'])
    assert all(len(p.id.encode()) <= MAX_ID_BYTES for p in pairs)
    assert pairs[0].id.startswith('xxxx') and pairs[0].id != pairs[1].id
    report = match_pairs(model, pairs, tmp_path / 'out', progress=False)
    assert report.matched == [p.id for p in pairs] and not report.failed


def test_a_list_saved_with_a_byte_order_mark_reads(tmp_path):
    photo(tmp_path / 's.png', 0)
    photo(tmp_path / 't.png', 1)
    (tmp_path / 'pairs.csv').write_bytes('\ufeffsource,target\ns.png,t.png\n'.encode())
    pairs = read_pairs([tmp_path / 'pairs.csv'])
    assert [(p.source.name, p.target.name) for p in pairs] == [('s.png', 't.png')]


def test_a_pair_whose_files_cannot_be_written_fails_alone(model, tmp_path):
    out = tmp_path / 'out'
    (out / 'b.csv').mkdir(parents=True)  # a folder where b's CSV goes: writing it fails
    report = match_pairs(model, folder_pairs(tmp_path, 0), out, progress=False)
    assert report.matched == ['a'] and set(report.failed) == {'b'}
