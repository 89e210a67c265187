"""tools/analysis/transfer_benchmark.py: what it counts and writes (never how fast)."""
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from corrkit.apis import init_matcher

REPO = Path(__file__).resolve().parents[1]

#: A tiny keypoint matcher: timm's test_resnet (random weights), no neck.
KEYPOINT_TINY = dict(
    type='KeypointMatcher', input_size=32,
    backbone=dict(type='TimmHypercolumnBackbone', model_name='test_resnet', pretrained=False,
                  taps=(2, 3)),
    head=dict(type='WindowSoftArgmaxHead'))


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location(
        'transfer_benchmark', REPO / 'tools' / 'analysis' / 'transfer_benchmark.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def write_coco(bench, folder: Path, count: int = 5, side: int = 48) -> Path:
    """``count`` generated images, each one instance with three labelled keypoints."""
    paths = bench.generate_images(folder / 'images', count, side)
    coco = {'categories': [{'id': 1, 'name': 'thing', 'keypoints': ['a', 'b', 'c'],
                            'skeleton': []}], 'images': [], 'annotations': []}
    for i, path in enumerate(paths, 1):
        coco['images'].append({'id': i, 'file_name': f'images/{path.name}', 'width': side,
                               'height': side})
        coco['annotations'].append({'id': i, 'image_id': i, 'category_id': 1, 'iscrowd': 0,
                                    'keypoints': [10, 12, 2, 30, 20, 2, 20, 36, 2],
                                    'num_keypoints': 3, 'bbox': [6, 8, 30, 32]})
    (folder / 'coco.json').write_text(json.dumps(coco))
    return folder / 'coco.json'


def tiny_collection(bench, folder: Path, n_refs: int, n_targets: int):
    coco_path = write_coco(bench, folder)
    coco, category, instances = bench.category_instances(coco_path)
    refs = bench.write_references(coco, category, instances[:n_refs], folder / 'refs.json')
    targets = bench.image_paths(coco, instances[n_refs:n_refs + n_targets], folder)
    return bench.Collection(refs, folder, targets)


@pytest.mark.parametrize('mirrored', [False, True])
def test_transfer_encodes_each_image_once_and_match_pairs_no_fewer_targets(
        bench, tmp_path, mirrored):
    model = init_matcher({'model': {**KEYPOINT_TINY, 'pose_alignment': mirrored}})
    assert model.mirrors_source is mirrored
    n_refs, n_targets = 2, 3
    collection = tiny_collection(bench, tmp_path, n_refs, n_targets)
    rows = {r['method']: r for r in bench.compare(model, collection, tmp_path / 'work',
                                                   repeats=2)}
    copies = 2 if mirrored else 1
    transfer, pairwise = rows['transfer_keypoints'], rows['match_pairs']
    for row in rows.values():
        assert (row['refs'], row['targets'], row['pairs']) == (n_refs, n_targets, 6)
        assert len(row['rounds']) == 2 and 0 < row['best_seconds'] <= row['seconds']
    # the references in one batch, the targets in one (batch size 8), each mirrored too when
    # the model mirrors its sources: a transfer matches every target back to its references
    assert transfer['backbone_images'] == copies * (n_refs + n_targets)
    assert transfer['backbone_calls'] == copies * 2
    # match_pairs: one image per call; its cache encodes each image once, and mirrors only
    # the references (its sources)
    assert pairwise['backbone_images'] == copies * n_refs + n_targets
    assert pairwise['backbone_calls'] == pairwise['backbone_images']
    assert pairwise['backbone_images'] >= n_refs + n_targets
    if not mirrored:
        assert pairwise['backbone_images'] >= transfer['backbone_images']
        assert pairwise['backbone_calls'] > transfer['backbone_calls']


def test_targets_past_the_pool_are_mirrored_copies(bench, tmp_path):
    pool = bench.generate_images(tmp_path / 'pool', 2, 24)
    targets = bench.target_images(pool, 5, tmp_path / 'mirrored')
    assert targets[:2] == pool and len(set(targets)) == 5
    assert all(path.is_file() for path in targets)


def test_match_pairs_sources_are_the_encoded_regions(bench, tmp_path):
    collection = tiny_collection(bench, tmp_path, 1, 2)
    pairs = bench.reference_pairs(collection, tmp_path / 'pairs')
    assert [p.target for p in pairs] == collection.targets
    kps = json.loads(pairs[0].kps.read_text())
    # box 6..36 x 8..40 grown by 10 % of 32 on each side, clipped to the 48 px image
    assert kps[0] == pytest.approx([10 - 2, 12 - 4])


def test_peak_memory_is_the_childs_own(bench, tmp_path):
    grow = [sys.executable, '-c', 'x = bytearray(300 * 2 ** 20); x[::4096] = b"1" * len(x[::4096])']
    large = bench.peak_memory_run(grow, tmp_path / 'large.log')
    small = bench.peak_memory_run([sys.executable, '-c', 'pass'], tmp_path / 'small.log')
    assert large['peak_rss_mb'] >= 300 and small['peak_rss_mb'] < 100  # not the largest child's
    with pytest.raises(RuntimeError, match='exited with 3'):
        bench.peak_memory_run([sys.executable, '-c', 'raise SystemExit(3)'], tmp_path / 'x.log')


def run_tool(bench, folder: Path, *extra: str) -> dict:
    coco = write_coco(bench, folder / 'data')
    config = folder / 'tiny.py'
    config.write_text(f'model = {KEYPOINT_TINY!r}\n')
    out = folder / 'bench.json'
    assert bench.main(['--config', os.fspath(config), '--coco', os.fspath(coco), '--refs', '1',
                       '2', '--targets', '2', '--out', os.fspath(out), *extra]) == 0
    return json.loads(out.read_text())


def test_tool_prints_the_table_and_writes_the_json(bench, tmp_path, capsys):
    result = run_tool(bench, tmp_path, '--no-memory')
    assert 'match_pairs s / this s' in capsys.readouterr().out
    assert {'command', 'model', 'mirrors_source', 'category', 'batch_size', 'device',
            'machine', 'throughput', 'memory'} <= set(result)
    assert [(r['refs'], r['method']) for r in result['throughput']] == [
        (1, 'transfer_keypoints'), (1, 'match_pairs'), (2, 'transfer_keypoints'),
        (2, 'match_pairs')]
    assert {'backbone_calls', 'backbone_images', 'backbone_seconds', 'seconds', 'pairs',
            'targets_per_s', 'rounds', 'speedup'} <= set(result['throughput'][0])
    assert result['throughput'][2]['backbone_images'] == 2 + 2 and result['memory'] == []


@pytest.mark.slow
def test_tool_measures_a_transfer_subprocess(bench, tmp_path, capsys):
    result = run_tool(bench, tmp_path, '--memory-targets', '3', '--memory-size', '24')
    assert 'peak RSS MiB' in capsys.readouterr().out
    assert [r['targets'] for r in result['memory']] == [3]
    assert result['memory'][0]['peak_rss_mb'] > 0 and result['memory'][0]['image_side'] == 24
