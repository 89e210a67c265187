"""corrkit transfer: outputs, images through the backbone, resuming, the feature cache,
bad inputs, and two processes against one."""
import csv
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from corrkit.apis.collection import read_references, read_targets
from corrkit.apis.transfer import transfer_keypoints
from corrkit.cli import main as corrkit_main
from corrkit.errors import AnnotationError
from corrkit.registry import MODELS

from ..conftest import TINY_MATCHER

BACKBONE = dict(type='TimmHypercolumnBackbone', model_name='test_resnet', taps=(2, 3),
                pretrained=False)
KEYPOINT = dict(type='KeypointMatcher', backbone=BACKBONE, input_size=48,
                head=dict(type='SoftArgmaxKeypointHead'))
NAMES = ['eye', 'nose', 'ear', 'tail']


def build(cfg: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS.build(cfg).eval()


def texture(seed: int, size=(80, 96)) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((size[1], size[0]), Image.Resampling.BICUBIC)


def coco_refs(folder: Path, keypoints_a, keypoints_b) -> Path:
    doc = {
        'images': [{'id': 1, 'file_name': 'refs/a.png', 'width': 96, 'height': 80},
                   {'id': 2, 'file_name': 'refs/b.png', 'width': 96, 'height': 80}],
        'categories': [{'id': 1, 'name': 'cat', 'keypoints': NAMES, 'skeleton': [[1, 2], [2, 3]]},
                       {'id': 3, 'name': 'box', 'keypoints': ['corner', 'centre']}],
        'annotations': [
            {'id': 1, 'image_id': 1, 'category_id': 1, 'keypoints': keypoints_a},
            {'id': 2, 'image_id': 2, 'category_id': 1, 'keypoints': keypoints_b,
             'bbox': [10, 10, 60, 50]},
            {'id': 3, 'image_id': 2, 'category_id': 3, 'keypoints': [20, 20, 2, 40, 30, 2]},
            {'id': 4, 'image_id': 1, 'category_id': 3, 'keypoints': [0, 0, 0, 0, 0, 0]}]}
    path = folder / 'refs.json'
    path.write_text(json.dumps(doc))
    return path


KPS_A = [20, 20, 2, 50, 30, 2, 70, 40, 1, 0, 0, 0]  # the tail unlabelled in A
KPS_B = [0, 0, 0, 45, 25, 2, 65, 45, 2, 30, 50, 2]  # the eye unlabelled in B


@pytest.fixture
def collection(tmp_path):
    (tmp_path / 'refs').mkdir()
    texture(0).save(tmp_path / 'refs' / 'a.png')
    texture(1).save(tmp_path / 'refs' / 'b.png')
    refs = coco_refs(tmp_path, KPS_A, KPS_B)
    targets = tmp_path / 'targets'
    (targets / 'more').mkdir(parents=True)
    for i in range(3):
        texture(10 + i, size=(64 + 8 * i, 72)).save(targets / f't{i}.png')
    texture(20).save(targets / 'more' / 't3.jpg')
    return refs, [targets / f't{i}.png' for i in range(3)] + [targets / 'more' / 't3.jpg']


class BackboneCounter:
    """Images through the backbone (forward hook)."""

    def __init__(self, model):
        self.images = 0
        self.handle = model.backbone.register_forward_hook(self)

    def __call__(self, module, args, output):
        self.images += args[0].shape[0]


def load(out: Path, name: str):
    return json.loads((out / name).read_text())


def keypoints(out: Path, scores: bool = True) -> np.ndarray:
    """Every annotation's coordinates (and scores) of a run, flat."""
    values = []
    for ann in load(out, 'annotations.json')['annotations']:
        values += [c for i, c in enumerate(ann['keypoints']) if i % 3 != 2]
        values += ann['keypoint_scores'] if scores else []
    return np.array(values, dtype=float)


@pytest.mark.parametrize('cfg', [TINY_MATCHER, KEYPOINT], ids=['correlation', 'keypoint'])
def test_every_image_is_encoded_once_and_the_files_are_complete(collection, tmp_path, cfg):
    refs, targets = collection
    model = build(cfg)
    counter = BackboneCounter(model)
    report = transfer_keypoints(model, refs, targets, tmp_path / 'out', min_score=0.3,
                                progress=False)
    # 3 reference instances (2 of 'cat', 1 of 'box'; the empty one is no reference)
    assert counter.images == report.encoded == 3 + len(targets)
    doc = load(tmp_path / 'out', 'annotations.json')
    assert [i['file_name'] for i in doc['images']] == ['t0.png', 't1.png', 't2.png',
                                                      'more/t3.jpg']
    assert [(i['width'], i['height']) for i in doc['images']] == [(72, 64), (72, 72),
                                                                  (72, 80), (96, 80)]
    assert {c['name']: c['skeleton'] for c in doc['categories']} == {
        'cat': [[1, 2], [2, 3]], 'box': []}
    assert len(doc['annotations']) == 2 * len(targets)  # one per target and category
    for ann in doc['annotations']:
        image = doc['images'][ann['image_id'] - 1]
        flags = ann['keypoints'][2::3]
        assert len(ann['keypoint_scores']) == len(flags)
        for v, s, x, y in zip(flags, ann['keypoint_scores'], ann['keypoints'][0::3],
                              ann['keypoints'][1::3]):
            assert v in (1, 2) and (v == 2) == (s >= 0.3)
            assert -0.5 <= x <= image['width'] - 0.5 and -0.5 <= y <= image['height'] - 0.5
        assert ann['num_keypoints'] == sum(f > 0 for f in flags)
    results = load(tmp_path / 'out', 'results.json')
    assert [(r['image_id'], r['category_id'], r['keypoints']) for r in results] == [
        (a['image_id'], a['category_id'], a['keypoints']) for a in doc['annotations']]
    rows = (tmp_path / 'out' / 'keypoints.csv').read_text().splitlines()
    assert rows[0] == 'target,category,keypoint,x,y,score,accepted'
    assert len(rows) - 1 == sum(a['num_keypoints'] for a in doc['annotations'])
    summary = load(tmp_path / 'out', 'summary.json')
    assert summary['accepted'] + summary['flagged'] == len(rows) - 1 == \
        report.accepted + report.flagged


def test_the_outputs_load_in_pycocotools(collection, tmp_path):
    coco_module = pytest.importorskip('pycocotools.coco')
    refs, targets = collection
    transfer_keypoints(build(KEYPOINT), refs, targets, tmp_path / 'out', progress=False)
    gt = coco_module.COCO(str(tmp_path / 'out' / 'annotations.json'))
    res = gt.loadRes(str(tmp_path / 'out' / 'results.json'))
    assert len(res.getAnnIds()) == len(gt.getAnnIds()) == 8
    assert gt.loadCats(gt.getCatIds(catNms=['cat']))[0]['keypoints'] == NAMES


def test_a_keypoint_no_reference_labels_is_absent_and_unlabelled_ones_are_not_sent(
        collection, tmp_path):
    refs, targets = collection
    doc = json.loads(refs.read_text())
    for ann in doc['annotations']:
        if ann['category_id'] == 1:
            ann['keypoints'][9:12] = [0, 0, 0]  # nobody labels the tail
    refs.write_text(json.dumps(doc))
    transfer_keypoints(build(KEYPOINT), refs, targets, tmp_path / 'out', progress=False)
    for ann in load(tmp_path / 'out', 'annotations.json')['annotations']:
        if ann['category_id'] == 1:
            assert ann['keypoints'][9:12] == [0, 0, 0] and ann['keypoint_scores'][3] == 0
            assert all(v > 0 for v in ann['keypoints'][2:9:3])


def test_a_rerun_skips_what_is_done_and_redoes_what_changed(collection, tmp_path):
    refs, targets = collection
    model = build(KEYPOINT)
    first = transfer_keypoints(model, refs, targets, tmp_path / 'out', progress=False)
    before = load(tmp_path / 'out', 'annotations.json')
    counter = BackboneCounter(model)
    again = transfer_keypoints(model, refs, targets, tmp_path / 'out', progress=False)
    assert counter.images == 0 and sorted(again.skipped) == sorted(first.done)
    assert load(tmp_path / 'out', 'annotations.json') == before
    texture(99, size=(64, 72)).save(targets[0])  # the user replaced one image
    third = transfer_keypoints(model, refs, targets, tmp_path / 'out', progress=False)
    assert third.done == third.replaced == ['t0.png'] and counter.images == 3 + 1
    # a new threshold rewrites the files from the parts without encoding anything
    counter.images = 0
    transfer_keypoints(model, refs, targets, tmp_path / 'out', min_score=1.0, progress=False)
    assert counter.images == 0
    flags = [v for a in load(tmp_path / 'out', 'annotations.json')['annotations']
             for v in a['keypoints'][2::3]]
    assert set(flags) == {1}


def test_the_feature_cache_serves_a_second_run_with_other_references(collection, tmp_path):
    refs, targets = collection
    model = build(KEYPOINT)
    cache = tmp_path / 'cache'
    transfer_keypoints(model, refs, targets, tmp_path / 'one', feature_cache=cache,
                       progress=False)
    assert oct(cache.stat().st_mode & 0o777) == '0o700'
    other = coco_refs(tmp_path, [20, 20, 2, 50, 31, 2, 70, 40, 2, 0, 0, 0], KPS_B)
    counter = BackboneCounter(model)
    report = transfer_keypoints(model, other, targets, tmp_path / 'two', feature_cache=cache,
                                progress=False)
    # reference 'a' has no box (the whole image, cached); b's region is unchanged
    assert counter.images == report.encoded == 0 and report.cache_hits == 3 + len(targets)
    plain = transfer_keypoints(model, other, targets, tmp_path / 'three', progress=False)
    assert plain.encoded == 3 + len(targets)
    cached, fresh = (keypoints(tmp_path / n) for n in ('two', 'three'))
    assert np.abs(cached - fresh).max() <= 0.02  # the same maps; rounding to 0.01 px


def test_a_half_precision_cache_stays_within_a_pixel(collection, tmp_path):
    refs, targets = collection
    model = build(KEYPOINT)
    for name in ('fill', 'half'):  # the first run fills the cache, the second reads it
        transfer_keypoints(model, refs, targets, tmp_path / name, progress=False,
                           feature_cache=tmp_path / 'cache', cache_dtype='float16')
    transfer_keypoints(model, refs, targets, tmp_path / 'full', progress=False)
    half, full = (keypoints(tmp_path / n, scores=False) for n in ('half', 'full'))
    assert np.abs(half - full).max() <= 1.0


def test_an_untrusted_or_corrupted_cache_is_not_believed(collection, tmp_path):
    refs, targets = collection
    model = build(KEYPOINT)
    shared = tmp_path / 'shared'
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.warns(UserWarning, match='others may write into it'):
        report = transfer_keypoints(model, refs, targets, tmp_path / 'a', progress=False,
                                    feature_cache=shared)
    assert report.encoded == 3 + len(targets) and not list(shared.iterdir())
    cache = tmp_path / 'cache'
    transfer_keypoints(model, refs, targets, tmp_path / 'b', progress=False,
                       feature_cache=cache)
    entries = sorted(cache.rglob('*.pt'))
    entries[0].write_bytes(b'not a tensor file')
    entries[1].write_bytes(entries[2].read_bytes())  # another image's features
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        report = transfer_keypoints(model, refs, targets, tmp_path / 'c', progress=False,
                                    feature_cache=cache)
    assert report.encoded == 2 and report.cache_hits == 3 + len(targets) - 2
    assert np.abs(keypoints(tmp_path / 'b') - keypoints(tmp_path / 'c')).max() <= 0.02


def test_pose_alignment_encodes_each_image_mirrored_once_more(collection, tmp_path):
    refs, targets = collection
    model = build({**KEYPOINT, 'pose_alignment': True,
                   'head': dict(type='WindowSoftArgmaxHead', window=3)})
    counter = BackboneCounter(model)
    report = transfer_keypoints(model, refs, targets, tmp_path / 'out', progress=False)
    assert counter.images == report.encoded == 2 * (3 + len(targets))


def test_a_bad_target_is_named_and_skipped(collection, tmp_path):
    refs, targets = collection
    bad = targets[0].parent / 'broken.jpg'
    bad.write_bytes(b'\xff\xd8 not really a jpeg')
    errors = []
    report = transfer_keypoints(build(KEYPOINT), refs, targets + [bad], tmp_path / 'out',
                                progress=False, on_error=lambda i, m: errors.append((i, m)))
    assert list(report.failed) == ['broken.jpg'] and errors[0][0] == 'broken.jpg'
    assert 'broken.jpg' in errors[0][1]
    assert len(load(tmp_path / 'out', 'annotations.json')['images']) == len(targets)
    assert load(tmp_path / 'out', 'summary.json')['failed'] == report.failed


def test_references_are_read_with_their_boxes_and_paths_stay_inside(collection, tmp_path):
    refs, _ = collection
    coco, references = read_references(refs)
    assert [(r.category.name, r.crop) for r in references] == [
        ('cat', None), ('cat', (4, 4, 77, 67)), ('box', None)]
    assert references[1].scale == 60 and references[0].labelled.tolist() == [
        True, True, True, False]
    doc = json.loads(refs.read_text())
    doc['images'][0]['file_name'] = '../outside.png'
    refs.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match=r"'\.\./outside\.png' points outside"):
        transfer_keypoints(build(KEYPOINT), refs, [tmp_path / 'x.png'], tmp_path / 'o',
                           progress=False)
    with pytest.raises(KeyError, match="no category 'dog'"):
        read_references(collection[0], category='dog')


def test_targets_come_from_files_folders_lists_and_coco_files(collection, tmp_path):
    _, targets = collection
    folder = targets[0].parent
    listing = tmp_path / 'list.txt'
    listing.write_text('# mine\ntargets/t1.png\n\ntargets/more/t3.jpg\n')
    coco = tmp_path / 'images.json'
    coco.write_text(json.dumps({'images': [{'id': 1, 'file_name': 'targets/t2.png'}]}))
    found = read_targets([folder, listing, coco, targets[0]])
    assert [p.name for p in found] == ['t0.png', 't1.png', 't2.png', 't3.jpg']
    with pytest.raises(FileNotFoundError, match='nowhere.png'):
        read_targets([tmp_path / 'nowhere.png'])
    (tmp_path / 'empty').mkdir()
    with pytest.raises(AnnotationError, match='no target image'):
        read_targets([tmp_path / 'empty'])


def test_the_command_writes_the_files_evaluates_and_reports(collection, tmp_path, capsys):
    refs, targets = collection
    gt = tmp_path / 'gt.json'
    gt.write_text(json.dumps({
        'images': [{'id': 7, 'file_name': 'targets/t1.png'}],
        'categories': [{'id': 1, 'name': 'cat', 'keypoints': NAMES}],
        'annotations': [{'image_id': 7, 'category_id': 1,
                         'keypoints': [10, 10, 2, 20, 20, 2, 30, 30, 2, 0, 0, 0],
                         'bbox': [0, 0, 70, 70]}]}))
    status = corrkit_main(['transfer', '--refs', str(refs), str(targets[0].parent),
                           '--config', str(Path(__file__).parents[2] / 'configs' /
                                           'transformatcher_tiny.py'),
                           '--out-dir', str(tmp_path / 'out'), '--eval', str(gt), '--html',
                           '--no-progress', '--category', 'cat'])
    out = capsys.readouterr().out
    assert status == 0
    assert '3 targets: 3 transferred, 0 already done, 0 failed' in out  # the folder's own
    assert '5 images encoded' in out  # 2 'cat' references + 3 targets
    for name in ('annotations.json', 'results.json', 'keypoints.csv', 'gallery.html',
                 'eval.json'):
        assert (tmp_path / 'out' / name).is_file()
    evaluation = load(tmp_path / 'out', 'eval.json')
    assert evaluation['images'] == 1 and evaluation['overall']['all']['n'] == 3
    assert [c['name'] for c in load(tmp_path / 'out', 'annotations.json')['categories']] == \
        ['cat']


def test_the_command_names_a_bad_references_file(tmp_path, capsys):
    refs = tmp_path / 'refs.json'
    refs.write_text(json.dumps({'images': [], 'categories': [
        {'id': 1, 'name': 'x', 'keypoints': ['a']}], 'annotations': [
        {'image_id': 1, 'category_id': 1, 'keypoints': [1, 2, 2]}]}))
    (tmp_path / 't.png').write_bytes(b'')
    with pytest.raises(SystemExit) as exit_:
        corrkit_main(['transfer', '--refs', str(refs), str(tmp_path / 't.png'),
                      '--out-dir', str(tmp_path / 'out')])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and 'Traceback' not in err
    assert "refs.json', annotations[0]: 'image_id' 1 is not in 'images'" in err


def _rank(rank: int, world: int, init: str, weights: str, refs: str, targets: list,
          out: str) -> None:
    torch.distributed.init_process_group('gloo', init_method=init, rank=rank,
                                         world_size=world)
    try:
        model = build(KEYPOINT)
        model.load_state_dict(torch.load(weights, weights_only=True))
        transfer_keypoints(model, refs, [Path(t) for t in targets], out, progress=False,
                           rank=rank, world_size=world)
    finally:
        torch.distributed.destroy_process_group()


def test_two_processes_write_what_one_writes(collection, tmp_path):
    refs, targets = collection
    model = build(KEYPOINT)
    weights = tmp_path / 'w.pt'
    torch.save(model.state_dict(), weights)
    transfer_keypoints(model, refs, targets, tmp_path / 'one', progress=False)
    init = f'file://{tmp_path / "rendezvous"}'
    torch.multiprocessing.spawn(_rank, args=(2, init, str(weights), str(refs),
                                             [str(t) for t in targets], str(tmp_path / 'two')),
                                nprocs=2, join=True)
    assert load(tmp_path / 'two', 'annotations.json') == load(tmp_path / 'one',
                                                              'annotations.json')
    parts = sorted(p.name for p in (tmp_path / 'two' / 'parts').glob('*.json'))
    assert parts == ['more__t3.jpg.json', 't0.png.json', 't1.png.json', 't2.png.json']
    assert os.environ.get('RANK') is None  # spawn left this process alone


@pytest.mark.parametrize('options, message', [
    ({'min_score': float('nan')}, 'min_score must be a score from 0 to 1, got nan'),
    ({'min_score': 1.5}, 'min_score must be a score from 0 to 1, got 1.5'),
    ({'fusion': 'vote'}, "unknown fusion 'vote'"),
    ({'batch_size': 0}, 'batch_size must be at least 1'),
])
def test_bad_options_are_refused_before_any_work(collection, tmp_path, options, message):
    refs, targets = collection
    with pytest.raises(ValueError, match=message.replace('(', r'\(')):
        transfer_keypoints(build(KEYPOINT), refs, targets, tmp_path / 'out', progress=False,
                           **options)
    assert not (tmp_path / 'out').exists()


def test_an_edited_or_cut_part_is_transferred_again(collection, tmp_path):
    refs, targets = collection
    model = build(KEYPOINT)
    out = tmp_path / 'out'
    transfer_keypoints(model, refs, targets, out, progress=False)
    before = load(out, 'annotations.json')
    part = out / 'parts' / 't1.png.json'
    edited = json.loads(part.read_text())
    edited['categories']['1']['best_reference'] = 99  # inputs intact, content not
    part.write_text(json.dumps(edited))
    cut = out / 'parts' / 't2.png.json'
    cut.write_text(cut.read_text()[:100])
    report = transfer_keypoints(model, refs, targets, out, progress=False, html=True)
    assert sorted(report.done) == ['t1.png', 't2.png'] and report.replaced == ['t1.png']
    assert np.abs(keypoints(out) - np.concatenate(
        [[c for i, c in enumerate(a['keypoints']) if i % 3 != 2] + a['keypoint_scores']
         for a in before['annotations']])).max() <= 0.02


def test_a_large_gallery_keeps_its_images_beside_the_page(collection, tmp_path, monkeypatch):
    from corrkit.apis import transfer_outputs
    refs, targets = collection
    monkeypatch.setattr(transfer_outputs, 'INLINE_GALLERY_ITEMS', 3)
    transfer_keypoints(build(KEYPOINT), refs, targets, tmp_path / 'out', progress=False,
                       html=True, category='cat')  # 4 targets, one category: 4 items
    page = (tmp_path / 'out' / 'gallery.html').read_text()
    files = sorted(p.name for p in (tmp_path / 'out' / 'gallery_files').iterdir())
    assert files and 'data:image/jpeg;base64' not in page
    assert all(f'gallery_files/{name}' in page for name in files)


def test_a_target_that_fails_now_loses_its_earlier_result(collection, tmp_path):
    refs, targets = collection
    model = build(KEYPOINT)
    out = tmp_path / 'out'
    transfer_keypoints(model, refs, targets, out, progress=False)
    targets[1].write_bytes(b'not an image any more')
    report = transfer_keypoints(model, refs, targets, out, progress=False)
    assert list(report.failed) == ['t1.png'] and not (out / 'parts' / 't1.png.json').exists()
    names = [i['file_name'] for i in load(out, 'annotations.json')['images']]
    assert names == ['t0.png', 't2.png', 'more/t3.jpg']


def test_a_keypoint_on_the_edge_is_kept_and_one_outside_refused(collection, tmp_path):
    refs, targets = collection
    doc = json.loads(refs.read_text())
    doc['annotations'][0]['keypoints'][:3] = [96, 80, 2]  # a click on the corner
    refs.write_text(json.dumps(doc))
    _, references = read_references(refs)
    assert references[0].keypoints[0].tolist() == [95.5, 79.5, 2.0]
    doc['annotations'][0]['keypoints'][:3] = [98, 30, 2]
    refs.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match=r'annotations\[0\]: a labelled keypoint lies '
                                              r'outside its image \(96 x 80\)'):
        read_references(refs)


def test_large_targets_under_bf16_keep_sub_pixel_coordinates(collection, tmp_path):
    refs, _ = collection
    big = tmp_path / 'big.png'
    texture(5, size=(900, 1200)).save(big)
    transfer_keypoints(build(KEYPOINT), refs, [big], tmp_path / 'out', progress=False,
                       precision='bf16')
    coords = keypoints(tmp_path / 'out', scores=False)
    far = coords[coords > 512]
    assert far.size and (far % 4 != 0).any()  # bf16 holds only multiples of 4 there


def test_several_ranks_need_a_process_group(collection, tmp_path):
    refs, targets = collection
    with pytest.raises(ValueError, match='needs an initialised torch.distributed'):
        transfer_keypoints(build(KEYPOINT), refs, targets, tmp_path / 'out', progress=False,
                           rank=1, world_size=2)


def test_csv_names_cannot_run_as_formulas_and_boxes_have_areas(collection, tmp_path):
    refs, targets = collection
    doc = json.loads(refs.read_text())
    doc['categories'][0]['keypoints'][0] = '=HYPERLINK("http://x")'
    refs.write_text(json.dumps(doc))
    transfer_keypoints(build(KEYPOINT), refs, targets, tmp_path / 'out', progress=False,
                       min_score=0)
    rows = list(csv.reader((tmp_path / 'out' / 'keypoints.csv').open()))
    names = {row[2] for row in rows[1:]}
    assert '\'=HYPERLINK("http://x")' in names and not any(n.startswith('=') for n in names)
    for ann in load(tmp_path / 'out', 'annotations.json')['annotations']:
        assert ann['area'] == pytest.approx(ann['bbox'][2] * ann['bbox'][3], abs=0.01)


def test_a_coco_target_list_names_only_images_beside_it(tmp_path):
    (tmp_path / 'sub').mkdir()
    coco = tmp_path / 'sub' / 'images.json'
    coco.write_text(json.dumps({'images': [{'id': 1, 'file_name': '../secret.png'}]}))
    with pytest.raises(AnnotationError, match="'../secret.png' points outside"):
        read_targets([coco])
