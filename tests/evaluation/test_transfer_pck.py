"""PCK of transferred keypoints against a COCO keypoints ground truth."""
import json
from pathlib import Path

import pytest

from corrkit.coco import CocoImage, KeypointCategory, keypoints_document
from corrkit.evaluation.transfer_pck import TransferPCK, evaluate_transfer, format_transfer_pck

NAMES = ('a', 'b', 'c', 'd', 'e')
FACE = KeypointCategory(1, 'face', NAMES, ((0, 1),))
GT_POINTS = [(10, 10), (20, 20), (30, 30), (40, 40), (50, 45)]


def _flat(points, flags):
    out = []
    for (x, y), v in zip(points, flags):
        out += [float(x), float(y), int(v)]
    return out


def _ann(image_id, points, flags, bbox=None, category_id=1):
    entry = {'image_id': image_id, 'category_id': category_id,
             'keypoints': _flat(points, flags)}
    if bbox is not None:
        entry['bbox'] = list(bbox)
    return entry


def _write(path: Path, images, annotations, categories=(FACE,)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(keypoints_document(images, categories, annotations)))
    return path


def _shifted(dx):
    return [(x + d, y) for (x, y), d in zip(GT_POINTS, dx)]


@pytest.fixture
def files(tmp_path):
    """GT: img1 (box 100 px, all five labelled, e with v=1) and img2 (no prediction).
    Prediction of img1 (another id): errors 3, 8, 12, 20 px for a..d (v 2, 2, 1, 1), e not
    predicted."""
    gt = _write(tmp_path / 'gt.json', [CocoImage(1, 'img1.jpg', 200, 200),
                                       CocoImage(2, 'img2.jpg', 200, 200)],
                [_ann(1, GT_POINTS, [2, 2, 2, 2, 1], bbox=(0, 0, 100, 60)),
                 _ann(2, GT_POINTS, [2] * 5, bbox=(0, 0, 100, 60))])
    pred = _write(tmp_path / 'out' / 'annotations.json', [CocoImage(11, 'img1.jpg', 200, 200)],
                  [_ann(11, _shifted([3, 8, 12, 20, 0]), [2, 2, 1, 1, 0])])
    return pred, gt


def test_pck_numbers(files):
    pred, gt = files
    result = evaluate_transfer(pred, gt)
    assert result.alphas == (0.05, 0.1, 0.15)
    assert result.overall['all'] == {'n': 4, 'pck@0.05': 0.25, 'pck@0.1': 0.5, 'pck@0.15': 0.75}
    assert result.overall['accepted'] == {'n': 2, 'pck@0.05': 0.5, 'pck@0.1': 1.0,
                                          'pck@0.15': 1.0}
    assert result.overall['flagged'] == {'n': 2, 'pck@0.05': 0.0, 'pck@0.1': 0.0,
                                         'pck@0.15': 0.5}
    assert result.images == 1 and result.unmatched_images == 1
    assert result.missed == 1  # e: labelled in the GT, v = 0 in the prediction
    assert sorted(result.per_keypoint) == ['face/a', 'face/b', 'face/c', 'face/d']
    assert result.per_keypoint['face/b']['all'] == {'n': 1, 'pck@0.05': 0.0, 'pck@0.1': 1.0,
                                                    'pck@0.15': 1.0}
    assert result.per_keypoint['face/b']['flagged'] == {'n': 0, 'pck@0.05': None,
                                                        'pck@0.1': None, 'pck@0.15': None}
    assert result.per_keypoint['face/c']['flagged']['pck@0.15'] == 1.0
    assert result.per_keypoint['face/d']['flagged']['pck@0.15'] == 0.0
    errors = {name: (v, d) for name, v, d in result.errors}
    assert errors['face/a'] == (2, pytest.approx(0.03))
    assert errors['face/d'] == (1, pytest.approx(0.2))


def test_custom_alphas(files):
    result = evaluate_transfer(*files, alphas=(0.1, 0.25))
    assert result.overall['all'] == {'n': 4, 'pck@0.1': 0.5, 'pck@0.25': 1.0}


def test_points_unlabelled_in_the_ground_truth_are_not_counted(tmp_path):
    gt = _write(tmp_path / 'gt.json', [CocoImage(1, 'img1.jpg')],
                [_ann(1, GT_POINTS, [2, 0, 0, 2, 0], bbox=(0, 0, 100, 10))])
    pred = _write(tmp_path / 'pred.json', [CocoImage(1, 'img1.jpg')],
                  [_ann(1, _shifted([3, 0, 0, 40, 0]), [2, 2, 1, 0, 0])])
    result = evaluate_transfer(pred, gt)
    assert result.overall['all'] == {'n': 1, 'pck@0.05': 1.0, 'pck@0.1': 1.0, 'pck@0.15': 1.0}
    assert result.missed == 1  # d only: b and c are not labelled in the GT
    assert result.overall['flagged']['n'] == 0


def test_box_less_ground_truth_uses_the_extent_of_its_labelled_points(tmp_path):
    # labelled points span 40 x 30 px (the fifth, far away, is not labelled): size 40
    points = [(10, 10), (50, 10), (10, 40), (30, 25), (500, 500)]
    gt = _write(tmp_path / 'gt.json', [CocoImage(1, 'img1.jpg')],
                [_ann(1, points, [2, 2, 1, 2, 0])])
    moved = [(x + d, y) for (x, y), d in zip(points, [1, 3, 5, 7, 0])]  # 0.025 .. 0.175
    pred = _write(tmp_path / 'pred.json', [CocoImage(1, 'img1.jpg')],
                  [_ann(1, moved, [2, 2, 2, 2, 2])])
    result = evaluate_transfer(pred, gt)
    assert result.overall['all'] == {'n': 4, 'pck@0.05': 0.25, 'pck@0.1': 0.5, 'pck@0.15': 0.75}
    assert sorted(d for _, _, d in result.errors) == pytest.approx([0.025, 0.075, 0.125, 0.175])


def test_the_better_matching_of_two_instances_is_used(tmp_path):
    far = [(x + 300, y + 100) for x, y in GT_POINTS]
    gt = _write(tmp_path / 'gt.json', [CocoImage(1, 'img1.jpg')],
                [_ann(1, GT_POINTS, [2] * 5, bbox=(0, 0, 100, 60)),
                 _ann(1, far, [2] * 5, bbox=(300, 100, 200, 60))])
    # near the second instance (box 200 px): errors 3, 8, 12, 20, 40 px
    pred_points = [(x + d, y) for (x, y), d in zip(far, [3, 8, 12, 20, 40])]
    pred = _write(tmp_path / 'pred.json', [CocoImage(1, 'img1.jpg')],
                  [_ann(1, pred_points, [2] * 5)])
    result = evaluate_transfer(pred, gt)
    assert result.overall['all'] == {'n': 5, 'pck@0.05': 0.4, 'pck@0.1': 0.8, 'pck@0.15': 0.8}
    assert result.overall['accepted'] == result.overall['all']
    # and the other way round: near the first (box 100 px)
    pred = _write(tmp_path / 'pred2.json', [CocoImage(1, 'img1.jpg')],
                  [_ann(1, _shifted([3, 8, 12, 20, 40]), [2] * 5)])
    result = evaluate_transfer(pred, gt)
    assert result.overall['all'] == {'n': 5, 'pck@0.05': 0.2, 'pck@0.1': 0.4, 'pck@0.15': 0.6}


def test_instances_within_the_largest_alpha_of_both_go_to_the_closer(tmp_path):
    near = [(x + 20, y) for x, y in GT_POINTS]  # 0.1 of the 200 px boxes from the first
    gt = _write(tmp_path / 'gt.json', [CocoImage(1, 'img1.jpg')],
                [_ann(1, GT_POINTS, [2] * 5, bbox=(0, 0, 200, 60)),
                 _ann(1, near, [2] * 5, bbox=(0, 0, 200, 60))])
    # 2 px from the second instance, 22 px (0.11, within 0.15) from the first
    pred = _write(tmp_path / 'pred.json', [CocoImage(1, 'img1.jpg')],
                  [_ann(1, [(x + 2, y) for x, y in near], [2] * 5)])
    result = evaluate_transfer(pred, gt)
    assert result.overall['all'] == {'n': 5, 'pck@0.05': 1.0, 'pck@0.1': 1.0, 'pck@0.15': 1.0}
    assert [d for _, _, d in result.errors] == pytest.approx([0.01] * 5)


def test_other_categories_and_unlabelled_instances_are_not_candidates(tmp_path):
    hand = KeypointCategory(2, 'hand', NAMES)
    gt = _write(tmp_path / 'gt.json', [CocoImage(1, 'img1.jpg')],
                [_ann(1, _shifted([3] * 5), [2] * 5, bbox=(0, 0, 100, 60), category_id=2),
                 _ann(1, _shifted([3] * 5), [0] * 5, bbox=(0, 0, 100, 60)),
                 _ann(1, _shifted([30] * 5), [2] * 5, bbox=(0, 0, 100, 60))],
                categories=(FACE, hand))
    pred = _write(tmp_path / 'pred.json', [CocoImage(1, 'img1.jpg')],
                  [_ann(1, _shifted([3] * 5), [2] * 5)])
    result = evaluate_transfer(pred, gt)
    assert result.overall['all'] == {'n': 5, 'pck@0.05': 0.0, 'pck@0.1': 0.0, 'pck@0.15': 0.0}


def _target_layout(tmp_path):
    targets = [tmp_path / 'targets' / 'x' / 'img1.jpg', tmp_path / 'targets' / 'y' / 'img1.jpg']
    # the predictions' names are relative to the targets' common folder (targets/)
    pred = _write(tmp_path / 'out' / 'annotations.json',
                  [CocoImage(5, 'x/img1.jpg'), CocoImage(6, 'y/img1.jpg')],
                  [_ann(5, _shifted([3] * 5), [2] * 5), _ann(6, _shifted([12] * 5), [1] * 5)])
    return targets, pred


def test_matching_by_resolved_path_with_targets(tmp_path):
    targets, pred = _target_layout(tmp_path)
    # GT beside the targets' folder, names relative to its own folder
    gt = _write(tmp_path / 'gt.json', [CocoImage(1, 'targets/y/img1.jpg'),
                                       CocoImage(2, 'targets/x/img1.jpg'),
                                       CocoImage(3, 'targets/z/img1.jpg')],
                [_ann(1, GT_POINTS, [2] * 5, bbox=(0, 0, 100, 60)),
                 _ann(2, GT_POINTS, [2] * 5, bbox=(0, 0, 100, 60)),
                 _ann(3, GT_POINTS, [2] * 5, bbox=(0, 0, 100, 60))])
    result = evaluate_transfer(pred, gt, targets=targets)
    assert result.images == 2 and result.unmatched_images == 1
    assert result.overall['accepted'] == {'n': 5, 'pck@0.05': 1.0, 'pck@0.1': 1.0,
                                          'pck@0.15': 1.0}
    assert result.overall['flagged'] == {'n': 5, 'pck@0.05': 0.0, 'pck@0.1': 0.0,
                                         'pck@0.15': 1.0}
    # by file name alone nothing matches
    unmatched = evaluate_transfer(pred, gt)
    assert unmatched.images == 0 and unmatched.unmatched_images == 3
    assert unmatched.overall['all'] == {'n': 0, 'pck@0.05': None, 'pck@0.1': None,
                                        'pck@0.15': None}


def test_gt_root_gives_the_ground_truths_folder(tmp_path):
    targets, pred = _target_layout(tmp_path)
    gt = _write(tmp_path / 'labels' / 'gt.json', [CocoImage(1, 'x/img1.jpg')],
                [_ann(1, GT_POINTS, [2] * 5, bbox=(0, 0, 100, 60))])
    # relative to its own folder (labels/) nothing is a target
    assert evaluate_transfer(pred, gt, targets=targets).images == 0
    result = evaluate_transfer(pred, gt, targets=targets, gt_root=tmp_path / 'targets')
    assert result.images == 1 and result.unmatched_images == 0
    assert result.overall['all'] == {'n': 5, 'pck@0.05': 1.0, 'pck@0.1': 1.0, 'pck@0.15': 1.0}


def test_a_category_missing_from_the_ground_truth(files, tmp_path):
    pred, _ = files
    dog = KeypointCategory(1, 'dog', NAMES)
    gt = _write(tmp_path / 'dogs.json', [CocoImage(1, 'img1.jpg')],
                [_ann(1, GT_POINTS, [2] * 5)], categories=(dog,))
    with pytest.raises(ValueError, match='face') as info:
        evaluate_transfer(pred, gt)
    message = str(info.value)
    assert str(pred) in message and str(gt) in message and 'dog' in message


def test_keypoint_names_must_agree(files, tmp_path):
    pred, _ = files
    renamed = KeypointCategory(1, 'face', ('a', 'b', 'c', 'd', 'chin'))
    gt = _write(tmp_path / 'renamed.json', [CocoImage(1, 'img1.jpg')],
                [_ann(1, GT_POINTS, [2] * 5)], categories=(renamed,))
    with pytest.raises(ValueError, match='keypoint names') as info:
        evaluate_transfer(pred, gt)
    assert str(pred) in str(info.value) and str(gt) in str(info.value)


def test_save_writes_the_numbers(files, tmp_path):
    result = evaluate_transfer(*files)
    path = result.save(tmp_path / 'eval.json')
    assert path == tmp_path / 'eval.json'
    saved = json.loads(path.read_text())
    assert saved['overall']['all']['pck@0.1'] == 0.5
    assert saved['overall']['flagged']['pck@0.15'] == 0.5
    assert saved['per_keypoint']['face/c']['flagged']['n'] == 1
    assert saved['alphas'] == [0.05, 0.1, 0.15]
    assert (saved['images'], saved['unmatched_images'], saved['missed']) == (1, 1, 1)
    assert 'errors' not in saved


def test_format_prints_the_three_rows(files):
    text = format_transfer_pck(evaluate_transfer(*files))
    lines = text.splitlines()
    assert lines[0].split() == ['points', 'n', 'PCK@0.05', 'PCK@0.1', 'PCK@0.15']
    assert lines[1].split() == ['all', '4', '25.0', '50.0', '75.0']
    assert lines[2].split() == ['accepted', '2', '50.0', '100.0', '100.0']
    assert lines[3].split() == ['flagged', '2', '0.0', '0.0', '50.0']
    assert '1 ground-truth images matched, 1 without a prediction, 1 labelled points' in lines[4]


def test_format_of_an_empty_group():
    result = TransferPCK((0.1,), overall={'all': {'n': 0, 'pck@0.1': None}})
    lines = format_transfer_pck(result).splitlines()
    assert lines[1].split() == ['all', '0', '-']
    assert lines[2].split() == ['accepted', '0', '-']


def test_images_of_other_categories_are_not_counted_as_unmatched(tmp_path):
    other = KeypointCategory(2, 'paw', ('p',), ())
    gt = _write(tmp_path / 'gt.json', [CocoImage(1, 'img1.jpg', 200, 200),
                                       CocoImage(2, 'img2.jpg', 200, 200),
                                       CocoImage(3, 'paw.jpg', 200, 200)],
                [_ann(1, GT_POINTS, [2] * 5, bbox=(0, 0, 100, 60)),
                 _ann(2, GT_POINTS, [2] * 5, bbox=(0, 0, 100, 60)),
                 _ann(3, [(5, 5)], [2], category_id=2)], categories=(FACE, other))
    pred = _write(tmp_path / 'pred.json', [CocoImage(1, 'img1.jpg', 200, 200)],
                  [_ann(1, GT_POINTS, [2] * 5)])
    result = evaluate_transfer(pred, gt)
    # img2 labels 'face' and has no prediction; paw.jpg labels only 'paw', not evaluated
    assert result.images == 1 and result.unmatched_images == 1
    assert result.overall['all']['pck@0.05'] == 1.0
