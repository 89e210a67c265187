"""COCO keypoints files: read and checked (errors name the file, entry and key), written."""
import copy
import json
from pathlib import Path

import numpy as np
import pytest

from corrkit.coco import (CocoImage, KeypointCategory, keypoints_document, read_coco_images,
                          read_coco_keypoints)
from corrkit.errors import AnnotationError


def _valid_doc() -> dict:
    return {
        'info': {'description': 'test'},
        'images': [{'id': 1, 'file_name': 'a.jpg', 'width': 64, 'height': 48},
                   {'id': 2, 'file_name': 'sub/b.png', 'width': 32, 'height': 32},
                   {'id': 3, 'file_name': 'c.jpg'}],
        'categories': [{'id': 1, 'name': 'face', 'supercategory': 'body',
                        'keypoints': ['left_eye', 'right_eye', 'nose'],
                        'skeleton': [[1, 2], [2, 3], [1, 3]]},
                       {'id': 4, 'name': 'hand', 'keypoints': ['thumb', 'index']}],
        'annotations': [
            {'id': 5, 'image_id': 1, 'category_id': 1,
             'keypoints': [10, 12, 2, 30.5, 20, 1, 0, 0, 0], 'bbox': [5, 5, 40, 30]},
            {'id': 7, 'image_id': 2, 'category_id': 4, 'keypoints': [3, 4, 2, 5.25, 6, 2]},
            {'id': 9, 'image_id': 1, 'category_id': 4, 'keypoints': [1, 1, 1, 2, 2, 0]},
        ],
    }


def _write(tmp_path: Path, doc, name='refs.json') -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _annotation_dicts(coco):
    out = []
    for ann in coco.annotations:
        entry = {'id': ann.id, 'image_id': ann.image_id, 'category_id': ann.category_id,
                 'keypoints': ann.keypoints.ravel().tolist()}
        if ann.bbox is not None:
            entry['bbox'] = ann.bbox.tolist()
        out.append(entry)
    return out


def test_a_valid_file_reads(tmp_path):
    path = _write(tmp_path, _valid_doc())
    coco = read_coco_keypoints(path)
    assert list(coco.images) == [1, 2, 3]
    assert coco.images[3] == CocoImage(3, 'c.jpg', None, None)
    face = coco.categories[1]
    assert face.keypoints == ('left_eye', 'right_eye', 'nose')
    assert face.skeleton == ((0, 1), (1, 2), (0, 2))  # 0-based in memory
    assert face.supercategory == 'body'
    assert coco.categories[4].skeleton == ()
    first = coco.annotations[0]
    assert first.keypoints.shape == (3, 3) and first.keypoints.dtype == np.float64
    assert first.labelled.tolist() == [True, True, False]
    assert first.bbox.tolist() == [5, 5, 40, 30]
    assert coco.annotations[1].bbox is None and coco.annotations[1].index == 1
    assert [a.id for a in coco.instances_of(1)] == [5, 9]


def test_round_trip_through_keypoints_document(tmp_path):
    coco = read_coco_keypoints(_write(tmp_path, _valid_doc()))
    doc = keypoints_document(coco.images.values(), coco.categories.values(),
                             _annotation_dicts(coco), info={'description': 'again'})
    assert doc['info'] == {'description': 'again'}
    assert doc['categories'][0]['skeleton'] == [[1, 2], [2, 3], [1, 3]]  # 1-based in the file
    assert 'width' not in doc['images'][2]
    again = read_coco_keypoints(_write(tmp_path, json.dumps(doc), 'again.json'))
    assert again.images == coco.images
    assert again.categories == coco.categories
    assert len(again.annotations) == len(coco.annotations)
    for a, b in zip(again.annotations, coco.annotations):
        assert (a.id, a.image_id, a.category_id, a.index) == (b.id, b.image_id, b.category_id,
                                                              b.index)
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        assert (a.bbox is None) == (b.bbox is None)
        if a.bbox is not None:
            np.testing.assert_array_equal(a.bbox, b.bbox)


def test_keypoints_document_numbers_annotations_without_an_id():
    doc = keypoints_document([CocoImage(1, 'a.jpg')], [KeypointCategory(1, 'x', ('p',))],
                             [{'image_id': 1, 'category_id': 1, 'keypoints': [1, 2, 2]},
                              {'id': 1, 'image_id': 1, 'category_id': 1, 'keypoints': [1, 2, 2]},
                              {'image_id': 1, 'category_id': 1, 'keypoints': [3, 4, 2]}])
    ids = [a['id'] for a in doc['annotations']]
    assert ids[1] == 1  # as given
    assert len(set(ids)) == 3  # the added ones do not collide with a given one
    # pycocotools 2.0.9 and 2.0.10 fail in loadRes without it
    assert keypoints_document([], [], [])['info'] == {}


# --- malformed files: the error names the file, the entry and the key ----------------------

def _broken(change):
    doc = _valid_doc()
    change(doc)
    return doc


CASES = {
    'missing images': (lambda d: d.pop('images'), ["'images'"]),
    'missing categories': (lambda d: d.pop('categories'), ["'categories'"]),
    'missing annotations': (lambda d: d.pop('annotations'), ["'annotations'"]),
    'images not a list': (lambda d: d.update(images={'id': 1}), ["'images'", 'list']),
    'image without file_name': (lambda d: d['images'][1].pop('file_name'),
                                ['images[1] (id 2)', "'file_name'"]),
    'empty file_name': (lambda d: d['images'][1].update(file_name=' '),
                        ['images[1] (id 2)', "'file_name'"]),
    'duplicate image id': (lambda d: d['images'][2].update(id=1), ['images[2] (id 1)', 'id 1']),
    'negative width': (lambda d: d['images'][0].update(width=-3), ['images[0] (id 1)', "'width'"]),
    'image id a string': (lambda d: d['images'][0].update(id='one'),
                          ['images[0]', "'id'", 'integer']),
    'category without keypoint names': (lambda d: d['categories'][1].pop('keypoints'),
                                        ['categories[1] (id 4)', "'keypoints'"]),
    'category with no keypoints': (lambda d: d['categories'][1].update(keypoints=[]),
                                   ['categories[1] (id 4)', "'keypoints'"]),
    'duplicated keypoint names': (lambda d: d['categories'][0].update(
        keypoints=['eye', 'eye', 'nose']), ['categories[0] (id 1)', "'keypoints'", 'eye']),
    'skeleton out of range': (lambda d: d['categories'][0].update(skeleton=[[1, 4]]),
                              ['categories[0] (id 1)', "'skeleton'", '[1, 4]']),
    'skeleton zero': (lambda d: d['categories'][0].update(skeleton=[[0, 1]]),
                      ['categories[0] (id 1)', "'skeleton'", '[0, 1]']),
    'duplicate category id': (lambda d: d['categories'][1].update(id=1),
                              ['categories[1] (id 1)', 'category id 1']),
    'keypoints not 3K': (lambda d: d['annotations'][1].update(keypoints=[3, 4, 2, 5]),
                         ['annotations[1] (id 7)', "'keypoints'", '4', '6', "'hand'"]),
    'visibility 3': (lambda d: d['annotations'][1].update(keypoints=[3, 4, 3, 5, 6, 2]),
                     ['annotations[1] (id 7)', "'keypoints'", '3']),
    'negative visibility': (lambda d: d['annotations'][1].update(keypoints=[3, 4, -1, 5, 6, 2]),
                            ['annotations[1] (id 7)', "'keypoints'"]),
    'string in keypoints': (lambda d: d['annotations'][1].update(keypoints=[3, '4', 2, 5, 6, 2]),
                            ['annotations[1] (id 7)', "'keypoints'", 'numbers']),
    'bool in keypoints': (lambda d: d['annotations'][1].update(keypoints=[3, 4, True, 5, 6, 2]),
                          ['annotations[1] (id 7)', "'keypoints'", 'numbers']),
    'keypoints not a list': (lambda d: d['annotations'][1].update(keypoints='3 4 2'),
                             ['annotations[1] (id 7)', "'keypoints'"]),
    'missing keypoints': (lambda d: d['annotations'][1].pop('keypoints'),
                          ['annotations[1] (id 7)', "'keypoints'"]),
    'unknown image_id': (lambda d: d['annotations'][1].update(image_id=99),
                         ['annotations[1] (id 7)', "'image_id'", '99']),
    'unknown category_id': (lambda d: d['annotations'][1].update(category_id=2),
                            ['annotations[1] (id 7)', "'category_id'", '2']),
    'bbox zero width': (lambda d: d['annotations'][0].update(bbox=[5, 5, 0, 30]),
                        ['annotations[0] (id 5)', "'bbox'"]),
    'bbox three numbers': (lambda d: d['annotations'][0].update(bbox=[5, 5, 10]),
                           ['annotations[0] (id 5)', "'bbox'"]),
    'annotation not an object': (lambda d: d['annotations'].append([1, 2]),
                                 ['annotations[3]', 'object']),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_malformed_entries_are_named(tmp_path, case):
    change, expected = CASES[case]
    path = _write(tmp_path, _broken(change))
    with pytest.raises(AnnotationError) as info:
        read_coco_keypoints(path)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert str(path) in message
    for part in expected:
        assert part in message, (case, message)


@pytest.mark.parametrize('value', ['NaN', 'Infinity', '-Infinity'])
def test_non_finite_keypoints_are_refused(tmp_path, value):
    text = json.dumps(_valid_doc()).replace('[3, 4, 2, 5.25, 6, 2]', f'[3, 4, 2, {value}, 6, 2]')
    assert value in text
    with pytest.raises(AnnotationError) as info:
        read_coco_keypoints(_write(tmp_path, text))
    message = str(info.value)
    assert 'refs.json' in message and 'annotations[1] (id 7)' in message
    assert "'keypoints'" in message and 'finite' in message


@pytest.mark.parametrize('text,expected', [('{"images": [', 'JSON'), ('', 'JSON'),
                                           ('[1, 2]', 'object'), ('"images"', 'object'),
                                           ('\xff\xfe', 'JSON')])
def test_not_a_coco_object(tmp_path, text, expected):
    path = tmp_path / 'refs.json'
    path.write_bytes(text.encode('latin-1'))
    with pytest.raises(AnnotationError, match=expected) as info:
        read_coco_keypoints(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing.json'):
        read_coco_keypoints(tmp_path / 'nothing.json')


def test_a_utf8_bom_reads(tmp_path):
    path = tmp_path / 'bom.json'
    path.write_bytes(b'\xef\xbb\xbf' + json.dumps(_valid_doc()).encode('utf-8'))
    assert len(read_coco_keypoints(path).annotations) == 3
    assert [i.id for i in read_coco_images(path)] == [1, 2, 3]


def test_image_path(tmp_path):
    coco = read_coco_keypoints(_write(tmp_path, _valid_doc()))
    assert coco.image_path(coco.images[1]) == tmp_path / 'a.jpg'
    assert coco.image_path(coco.images[2]) == tmp_path / 'sub' / 'b.png'
    assert coco.image_path(coco.images[2], root=tmp_path / 'pics') == tmp_path / 'pics/sub/b.png'
    for name in ('/etc/passwd', '../a.jpg', 'sub/../../a.jpg', '..'):
        with pytest.raises(AnnotationError, match='outside') as info:
            coco.image_path(CocoImage(8, name))
        assert 'refs.json' in str(info.value)
    assert coco.image_path(CocoImage(8, 'sub/../x/y.jpg')) == tmp_path / 'x' / 'y.jpg'


def test_read_coco_images_of_a_detection_file(tmp_path):
    doc = {'images': [{'id': 3, 'file_name': 'x/1.jpg', 'width': 10, 'height': 20},
                      {'id': 4, 'file_name': '2.jpg'}],
           'categories': [{'id': 1, 'name': 'car'}],  # no keypoint names: not a keypoints file
           'annotations': [{'id': 1, 'image_id': 3, 'category_id': 1, 'bbox': [0, 0, 2, 2]}]}
    path = _write(tmp_path, doc)
    assert read_coco_images(path) == [CocoImage(3, 'x/1.jpg', 10, 20), CocoImage(4, '2.jpg')]
    with pytest.raises(AnnotationError, match="'keypoints'"):
        read_coco_keypoints(path)
    with pytest.raises(AnnotationError, match="'images'"):
        read_coco_images(_write(tmp_path, {'annotations': []}, 'none.json'))


def test_category_named_lists_the_names(tmp_path):
    coco = read_coco_keypoints(_write(tmp_path, _valid_doc()))
    assert coco.category_named('hand').id == 4
    with pytest.raises(KeyError) as info:
        coco.category_named('paw')
    message = str(info.value)
    assert 'paw' in message and "'face'" in message and "'hand'" in message


def test_pycocotools_reads_what_keypoints_document_writes(tmp_path):
    coco_module = pytest.importorskip('pycocotools.coco')
    source = read_coco_keypoints(_write(tmp_path, _valid_doc()))
    annotations = []
    for ann in _annotation_dicts(source):
        entry = {k: v for k, v in ann.items() if k != 'id'}
        entry.setdefault('bbox', [0, 0, 10, 10])
        entry.update(area=100.0, iscrowd=0,
                     num_keypoints=int(np.count_nonzero(np.asarray(ann['keypoints'])[2::3])))
        annotations.append(entry)
    path = tmp_path / 'written.json'
    path.write_text(json.dumps(keypoints_document(source.images.values(),
                                                  source.categories.values(), annotations)))
    gt = coco_module.COCO(str(path))
    assert 'info' in gt.dataset  # loadRes of pycocotools 2.0.9 and 2.0.10 reads it
    assert sorted(gt.getImgIds()) == [1, 2, 3]
    assert gt.loadCats(1)[0]['keypoints'] == ['left_eye', 'right_eye', 'nose']
    assert gt.loadCats(1)[0]['skeleton'] == [[1, 2], [2, 3], [1, 3]]
    assert len(gt.getAnnIds()) == 3
    results = [{'image_id': a['image_id'], 'category_id': a['category_id'],
                'keypoints': a['keypoints'], 'score': 0.9}
               for a in copy.deepcopy(gt.dataset['annotations'])]
    res = gt.loadRes(results)
    assert len(res.getAnnIds()) == 3
    assert sorted(res.getImgIds()) == [1, 2, 3]
    assert res.loadAnns(res.getAnnIds(imgIds=[2]))[0]['keypoints'] == [3, 4, 2, 5.25, 6, 2]


def test_two_categories_of_one_name_are_refused(tmp_path):
    path = tmp_path / 'dup.json'
    path.write_text(json.dumps({'images': [], 'annotations': [], 'categories': [
        {'id': 1, 'name': 'cat', 'keypoints': ['a']},
        {'id': 2, 'name': 'cat', 'keypoints': ['a', 'b']}]}))
    with pytest.raises(AnnotationError, match=r"categories\[1\] \(id 2\): category name 'cat' "
                                              r'appears twice'):
        read_coco_keypoints(path)
