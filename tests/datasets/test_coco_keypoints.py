"""COCO keypoints collections as pairs, and GeoAware-SC's AP-10K protocol, on a tiny AP-10K."""
import json
import subprocess
import sys

import numpy as np
import pytest

from corrkit.config import load_config
from corrkit.datasets import (AnnotationError, AP10KDataset, COCOKeypointsDataset,
                              DatasetNotFoundError)
from corrkit.registry import DATASETS

from .fixtures import AP10K_FILES, ap10k_instance, write_ap10k

FILES = tuple(f'annotations/ap10k-{split}-split1.json' for split in AP10K_FILES)
PIPELINE = [dict(type='LoadPairImages'), dict(type='PairResize', size=32),
            dict(type='PackPairInputs')]


def coco(root, **options):
    """The generic dataset over the fixture's three files (no protocol rules)."""
    return COCOKeypointsDataset(root, ann_file=FILES, img_prefix='data', **options)


def infos(dataset):
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def ids(dataset):
    return [p['pair_id'] for p in infos(dataset)]


def test_intra_species_pairs_keypoints_and_boxes(tmp_path):
    root = write_ap10k(tmp_path)
    pairs = infos(coco(root))
    assert [p['pair_id'] for p in pairs] == [
        '1-2:cat', '1-3:cat', '2-3:cat', '7-8:dog', '7-9:dog', '8-9:dog',
        '10-11:fox', '10-12:fox', '11-12:fox', '4-5:lion', '4-6:lion', '5-6:lion']
    first = pairs[0]
    assert first['category'] == 'cat'
    assert first['src_img_path'] == str(root / 'data' / '000000000010.jpg')
    assert first['trg_img_path'] == str(root / 'data' / '000000000011.jpg')
    np.testing.assert_array_equal(first['src_kps'], [[10, 12], [30, 12], [20, 25], [40, 40]])
    np.testing.assert_array_equal(first['trg_kps'], [[11, 12], [30, 13], [20, 25], [40, 40]])
    # the target's tail is unlabelled (v=0): kept in the array, masked
    assert first['kps_valid'].tolist() == [True, True, True, False]
    # COCO [x, y, w, h] -> [x1, y1, x2, y2]
    assert first['src_bbox'].tolist() == [5, 5, 45, 40]
    assert first['trg_bbox'].tolist() == [5, 5, 50, 40]
    assert coco(root).metainfo['classes'] == ('cat', 'dog', 'fox', 'lion')


def test_pairs_go_through_the_pipeline_with_the_box_threshold(tmp_path):
    sample = coco(write_ap10k(tmp_path), pipeline=PIPELINE)[0]['data_samples']
    assert sample.category == 'cat' and sample.kps_valid.tolist() == [True, True, True, False]
    # 64x48 -> 32x32 (stretched): the 45 x 35 box becomes 22.5 x 23.3
    assert sample.pck_ref_sizes['bbox'] == pytest.approx(35 * 32 / 48)


def test_without_a_bbox_the_box_surrounds_the_labelled_keypoints(tmp_path):
    instances = [ap10k_instance(0, n) for n in range(2)]
    instances[1]['bbox'] = None
    root = write_ap10k(tmp_path, instances)
    (pair,) = infos(coco(root))
    # instance n=1: labelled eyes and nose (the tail has v=0)
    assert pair['trg_bbox'].tolist() == [11, 12, 30, 25]


def test_settings_select_pairs_by_species_and_family(tmp_path):
    root = write_ap10k(tmp_path)
    species = {p['pair_id'].split(':')[0]: p for p in infos(coco(root))}
    assert len(species) == 12
    cross = infos(coco(root, setting='cross-species'))
    # cat x lion (Felidae) and dog x fox (Canidae), the source from the species named first
    assert len(cross) == 18
    assert {p['category'] for p in cross} == {'Felidae', 'Canidae'}
    by_id = {1: 'cat', 2: 'cat', 3: 'cat', 4: 'lion', 5: 'lion', 6: 'lion',
             7: 'dog', 8: 'dog', 9: 'dog', 10: 'fox', 11: 'fox', 12: 'fox'}
    family = {'cat': 'Felidae', 'lion': 'Felidae', 'dog': 'Canidae', 'fox': 'Canidae'}
    for pair in cross:
        src, trg = (by_id[int(k)] for k in pair['pair_id'].split(':')[0].split('-'))
        assert src != trg and family[src] == family[trg] == pair['category']
        assert (src, trg) in {('cat', 'lion'), ('dog', 'fox')}
    across = infos(coco(root, setting='cross-family'))
    assert len(across) == 36 and {p['category'] for p in across} == {'Canidae | Felidae'}
    for pair in across:
        src, trg = (by_id[int(k)] for k in pair['pair_id'].split(':')[0].split('-'))
        assert family[src] != family[trg]


def test_ordered_pairs_take_both_directions(tmp_path):
    root = write_ap10k(tmp_path)
    ordered = ids(coco(root, pairs='ordered'))
    assert len(ordered) == 24 and ordered[:2] == ['1-2:cat', '2-1:cat']


def test_caps_are_deterministic_and_per_category(tmp_path):
    root = write_ap10k(tmp_path)
    capped = ids(coco(root, pairs='ordered', max_pairs_per_category=2, seed=3))
    assert capped == ids(coco(root, pairs='ordered', max_pairs_per_category=2, seed=3))
    assert [p.split(':')[1] for p in capped] == ['cat'] * 2 + ['dog'] * 2 + ['fox'] * 2 + \
        ['lion'] * 2
    draws = {tuple(ids(coco(root, pairs='ordered', max_pairs_per_category=2, seed=s)))
             for s in range(6)}
    assert len(draws) > 1  # the seed matters
    # 3 instances behind each species: a cap of 1 per instance leaves 3 of 6 ordered pairs
    assert len(ids(coco(root, pairs='ordered', pairs_per_instance=1))) == 12
    # one category's draw does not depend on the others being there
    alone = ids(coco(root, pairs='ordered', max_pairs_per_category=2, seed=3,
                     exclude_images=_exclusion(root, [20, 21, 22, 30, 31, 32, 40, 41, 42])))
    assert alone == capped[:2]


def _exclusion(root, image_ids):
    (root / 'exclude.txt').write_text(''.join(f'{i:012d}\n' for i in image_ids))
    return 'exclude.txt'


def test_ap10k_protocol_rules(tmp_path):
    """Weighted mutual visibility >= 3 (v=1 weighs 0.5 per side), one animal per image,
    >= 3 labelled keypoints per instance, the per-species re-split, exclusions."""
    extra = [dict(ap10k_instance(0, 0), image_id=13, split='test'),  # two cats in one image:
             dict(ap10k_instance(0, 0), image_id=13, split='test',  # the second is left out
                  keypoints=[12, 12, 2, 30, 12, 2, 20, 25, 2, 40, 40, 2]),
             dict(ap10k_instance(0, 0), image_id=14, split='test',  # two labelled keypoints
                  keypoints=[12, 12, 2, 30, 12, 2, 20, 25, 0, 40, 40, 0])]
    instances = [ap10k_instance(s, n) for s in range(4) for n in range(3)]
    root = write_ap10k(tmp_path, instances + extra)
    # (n=1, n=2): eyes 1 + 1, nose 1 x 0.5, tail 0 -> 2.5 < 3: dropped
    pairs = ids(AP10KDataset(root))
    assert pairs == ['1-2:cat', '1-3:cat', '1-13:cat', '2-13:cat', '3-13:cat',
                     '7-8:dog', '7-9:dog', '10-11:fox', '10-12:fox', '4-5:lion', '4-6:lion']
    # the per-species re-split: the last instances by image id are test, the ones before
    # them val, the rest train (cat: images 10, 11, 12, 13; the others 3 images each)
    split = dict(test=2, val=1)
    assert ids(AP10KDataset(root, instance_split=split)) == ['3-13:cat']
    assert ids(AP10KDataset(root, instance_split=dict(test=1, val=1), split='train')) == [
        '1-2:cat']
    plain = write_ap10k(tmp_path / 'plain')
    assert ids(coco(plain, instance_split=split)) == [
        '2-3:cat', '8-9:dog', '11-12:fox', '5-6:lion']
    assert ids(coco(plain, instance_split=dict(test=1, val=2), split='val')) == [
        '1-2:cat', '7-8:dog', '10-11:fox', '4-5:lion']
    with pytest.raises(AnnotationError, match=r"split 'trn', setting 'intra-species'\): no "
                       r'pair; 0 instances'):
        coco(plain, instance_split=dict(test=1, val=2), split='train')
    # GeoAware-SC's list of crowded images: image ids, one a line
    assert ids(AP10KDataset(root, exclude_images=_exclusion(root, [13, 20])))[:3] == [
        '1-2:cat', '1-3:cat', '7-8:dog']
    assert 'cross-species' in AP10KDataset(root, setting='cross-species').setting


def test_pair_list_names_the_pairs(tmp_path):
    root = write_ap10k(tmp_path)
    (root / 'pairs.csv').write_text('source,target\n3, 1\n4,7\n')
    assert ids(coco(root, pair_list='pairs.csv')) == ['3-1:cat', '4-7:Canidae | Felidae']
    (root / 'pairs.csv').write_text('3,1\n4,99\n')
    with pytest.raises(AnnotationError, match=r"pairs\.csv, line 2: annotation id 99"):
        coco(root, pair_list='pairs.csv')
    (root / 'pairs.csv').write_text('3,1,2\n')
    with pytest.raises(AnnotationError, match=r'pairs\.csv, line 1: expected 2'):
        coco(root, pair_list='pairs.csv')


@pytest.mark.parametrize('break_it, message', [
    (lambda doc: doc['annotations'][1].update(keypoints=[1, 2, 2]),
     r"ap10k-test-split1\.json', annotations\[1\] \(id 6\): 'keypoints' has 3 numbers"),
    (lambda doc: doc['annotations'][0].update(image_id=555),
     r"ap10k-test-split1\.json', annotations\[0\] \(id 3\): 'image_id' 555"),
    (lambda doc: doc['images'][0].update(file_name='../../outside.jpg'),
     r"ap10k-test-split1\.json: path '\.\./\.\./outside\.jpg' points outside"),
    (lambda doc: doc['images'].append({'id': 10, 'file_name': 'other.jpg'}),
     r"ap10k-test-split1\.json': image id 10 is 'other\.jpg', but '000000000010\.jpg' in "
     r"'.*ap10k-train-split1\.json'"),
    (lambda doc: doc['categories'][0].update(name='kitten'),
     r"ap10k-test-split1\.json': category id 1 \('kitten'\) differs"),
])
def test_bad_files_name_the_file_and_entry(tmp_path, break_it, message):
    root = write_ap10k(tmp_path)
    path = root / FILES[2]
    doc = json.loads(path.read_text())
    break_it(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match=message):
        coco(root)


def test_missing_files_and_bad_options(tmp_path):
    root = write_ap10k(tmp_path)
    with pytest.raises(FileNotFoundError, match='nothing.json'):
        COCOKeypointsDataset(root, ann_file='nothing.json')
    with pytest.raises(FileNotFoundError, match='absent.txt'):
        coco(root, exclude_images='absent.txt')
    (root / 'bad.txt').write_text('10\ncat\n')
    with pytest.raises(AnnotationError, match=r'bad\.txt, line 2: expected an image id'):
        coco(root, exclude_images='bad.txt')
    for option in (dict(setting='cross-genus'), dict(pairs='some'),
                   dict(max_pairs_per_category=0), dict(occluded_weight=2),
                   dict(instance_split=dict(testing=3))):
        with pytest.raises(ValueError, match=next(iter(option))):
            coco(root, **option)


def test_missing_data_root_says_where_to_get_ap10k(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        AP10KDataset(tmp_path / 'ap10k')
    message = str(info.value)
    assert str(tmp_path / 'ap10k') in message and 'annotations/ap10k-' in message
    assert 'drive.google.com' in message and 'by hand' in message
    with pytest.raises(DatasetNotFoundError, match=r'Expected layout:(.|\n)*annotations\.json'):
        COCOKeypointsDataset(tmp_path / 'mine')


def test_registered_and_built_from_a_config(tmp_path):
    root = write_ap10k(tmp_path)
    cfg = load_config('configs/keypoint_mobilenetv2_zeroshot_ap10k_cross_family.py')
    dataset = DATASETS.build(dict(cfg.test_dataloader.dataset, data_root=str(root)))
    assert isinstance(dataset, AP10KDataset) and dataset.setting == 'cross-family'
    # 36 pairs of a cat or lion with a dog or fox; the 8 of two n=1/n=2 instances fail the
    # visibility rule; fewer than the cap of 30 remain
    assert dataset.max_pairs_per_category == 30 and len(dataset) == 28
    sample = dataset[0]['data_samples']
    assert sample.pck_ref_sizes['bbox'] > 0


def test_test_tool_evaluates_the_ap10k_config_on_the_fixture(repo, tmp_path):
    root = write_ap10k(tmp_path / 'ap10k')
    work = tmp_path / 'work'
    out = subprocess.run(
        [sys.executable, 'tools/test.py', 'configs/keypoint_mobilenetv2_zeroshot_ap10k.py',
         '--work-dir', str(work), '--cfg-options', f'test_dataloader.dataset.data_root={root}',
         'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
         'test_dataloader.batch_size=4', 'model.backbone.pretrained=False'],
        cwd=repo, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'PCK@0.1:' in out.stdout
    report = json.loads((work / 'pck_bbox.json').read_text())
    assert report['num_pairs'] == 8
    assert set(report['per_category']) == {'cat', 'dog', 'fox', 'lion'}
    assert report['frame'] == 'original' and report['alphas'] == [0.01, 0.05, 0.1]
