import json

import numpy as np
import pytest
import torch

from corrkit.datasets import AnnotationError, DatasetNotFoundError, SPairDataset

from .fixtures import spair_pair, write_spair

TEST_PIPELINE = [dict(type='LoadPairImages'), dict(type='PairResize', size=40),
                 dict(type='PackPairInputs')]


def test_reads_official_layout_and_resizes_annotations(tmp_path):
    root = write_spair(tmp_path, [spair_pair(), spair_pair(category='dog', src='c.jpg')])
    ds = SPairDataset(root, split='test', pipeline=TEST_PIPELINE)
    assert len(ds) == 2
    assert ds.metainfo['classes'] == ('cat', 'dog')
    out = ds[0]
    assert out['inputs'].shape == (2, 3, 40, 40) and out['inputs'].dtype == torch.uint8
    sample = out['data_samples']
    # source 100x80 -> 40x40: x' = (x + 0.5) * 0.4 - 0.5, y' = (y + 0.5) * 0.5 - 0.5
    expected = (torch.tensor([[10.0, 20.0], [50, 40], [90, 70]]) + 0.5) \
        * torch.tensor([0.4, 0.5]) - 0.5
    torch.testing.assert_close(sample.src_kps, expected)
    assert sample.kps_valid.all()
    assert sample.category == 'cat' and sample.category_id == 0
    assert sample.src_ori_shape == (80, 100) and sample.trg_ori_shape == (120, 60)
    assert sample.viewpoint_variation == 1 and sample.truncation == 2
    # target box [2, 4, 50, 100] on 60x120 -> x * 40/60, y * 40/120
    np.testing.assert_allclose(sample.trg_bbox, [2 * 2 / 3, 4 / 3, 50 * 2 / 3, 100 / 3],
                               rtol=1e-5)
    ref = sample.pck_ref_sizes
    assert ref['img'] == 40.0
    assert ref['bbox'] == pytest.approx(max(48 * 2 / 3, 96 / 3), rel=1e-5)
    kps = sample.trg_kps
    assert ref['bbox-kp'] == pytest.approx(float((kps.max(0).values - kps.min(0).values).max()))


def test_train_split_name_and_unknown_split(tmp_path):
    root = write_spair(tmp_path, [spair_pair()], split='trn')
    assert len(SPairDataset(root, split='train')) == 1
    with pytest.raises(ValueError, match="no split 'training'.*'trn'"):
        SPairDataset(root, split='training')


def test_missing_root_names_dataset_path_and_remedy(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        SPairDataset(tmp_path / 'nowhere')
    message = str(info.value)
    assert 'nowhere' in message and 'SPair' in message
    assert 'download_datasets.py' in message and 'make_mini_dataset.py' in message
    assert 'PairAnnotation' in message  # the layout


def test_missing_split_file_is_named(tmp_path):
    root = write_spair(tmp_path, [spair_pair()], split='trn')
    with pytest.raises(FileNotFoundError, match='Layout/large/test.txt'):
        SPairDataset(root, split='test')


@pytest.mark.parametrize('edit, pattern', [
    (lambda r: r.pop('trg_kps'), "missing field 'trg_kps'"),
    (lambda r: r.update(src_kps=[[1, 2, 3]]), "'src_kps' must be a list of \\[x, y\\]"),
    (lambda r: r.update(src_kps='oops'), "'src_kps' must be a list of \\[x, y\\] numbers"),
    (lambda r: r.update(trg_bndbox=[1, 2]), "'trg_bndbox' must have 4 numbers"),
    (lambda r: r.update(occlusion='x'), "'occlusion' must be an integer"),
    (lambda r: r.update(trg_kps=[[1, 2]]), "'src_kps' has 3 points but 'trg_kps' has 1"),
])
def test_malformed_annotation_names_file_and_field(tmp_path, edit, pattern):
    root = write_spair(tmp_path, [spair_pair()])
    path = next((root / 'PairAnnotation' / 'test').glob('*.json'))
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))
    with pytest.raises(AnnotationError, match=pattern) as info:
        SPairDataset(root)
    assert path.name in str(info.value)


def test_truncated_json_and_missing_annotation_are_named(tmp_path):
    root = write_spair(tmp_path, [spair_pair()])
    path = next((root / 'PairAnnotation' / 'test').glob('*.json'))
    path.write_text(path.read_text()[:30])
    with pytest.raises(AnnotationError, match='not valid JSON') as info:
        SPairDataset(root)
    assert path.name in str(info.value)
    path.unlink()
    with pytest.raises(AnnotationError, match='does not exist'):
        SPairDataset(root)


def test_image_path_cannot_escape_the_dataset(tmp_path):
    root = write_spair(tmp_path / 'spair', [spair_pair(trg='../../../secret.jpg')])
    with pytest.raises(AnnotationError, match='outside the dataset folder'):
        SPairDataset(root)


def test_pairs_without_valid_keypoints_are_dropped_with_one_warning(tmp_path):
    pairs = [spair_pair(), spair_pair(src='c.jpg', src_kps=[], trg_kps=[]),
             spair_pair(src='d.jpg', src_kps=[], trg_kps=[])]
    root = write_spair(tmp_path, pairs)
    with pytest.warns(UserWarning, match='dropped 2 of 3 pairs') as record:
        ds = SPairDataset(root)
    assert len(record) == 1 and len(ds) == 1


def test_unreadable_image_is_named(tmp_path):
    root = write_spair(tmp_path, [spair_pair()])
    bad = root / 'JPEGImages' / 'cat' / 'b.jpg'
    bad.write_bytes(b'not a jpeg')
    ds = SPairDataset(root, pipeline=TEST_PIPELINE)
    with pytest.raises(ValueError, match='b.jpg.*not a readable image'):
        ds[0]


def test_symlinked_category_folder_loads(tmp_path):
    real = write_spair(tmp_path / 'real', [spair_pair()])
    root = tmp_path / 'linked'
    (root / 'JPEGImages').mkdir(parents=True)
    (root / 'JPEGImages' / 'cat').symlink_to(real / 'JPEGImages' / 'cat')
    for name in ('PairAnnotation', 'Layout'):
        (root / name).symlink_to(real / name)
    ds = SPairDataset(root, pipeline=TEST_PIPELINE)
    assert ds[0]['inputs'].shape == (2, 3, 40, 40)


def test_split_file_names_cannot_leave_the_annotation_folder(tmp_path):
    root = write_spair(tmp_path / 'spair', [spair_pair()])
    outside = tmp_path / 'outside.json'
    outside.write_text(json.dumps({'category': 'cat'}))
    split = root / 'Layout' / 'large' / 'test.txt'
    split.write_text('../../../outside\n')
    with pytest.raises(AnnotationError, match=r"test.txt: path '../../../outside.json' points "
                                              r'outside the dataset folder'):
        SPairDataset(root)
    split.write_bytes(b'\xff\xfe\x00bad')
    with pytest.raises(AnnotationError, match='test.txt: not a UTF-8 text file'):
        SPairDataset(root)


def test_a_split_without_any_valid_pair_is_an_error(tmp_path):
    root = write_spair(tmp_path, [spair_pair(src_kps=[], trg_kps=[])])
    with pytest.raises(AnnotationError, match=r"split 'test'\): none of its 1 pairs has a "
                                              r'valid keypoint'):
        SPairDataset(root)
