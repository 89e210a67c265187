"""The embedded mini dataset: deterministic, exact, and readable as SPair-71k."""
import hashlib
import json

import pytest
import torch

from corrkit.datasets import SPairDataset, make_mini_dataset
from corrkit.datasets.mini.generator import _make_view
from corrkit.datasets.mini.photos import SPLIT_PHOTOS
from corrkit.datasets.mini.warps import EXACT_TOL, sample_warp

SMALL = dict(views={'trn': 2, 'val': 1, 'test': 2}, image_size=96, num_keypoints=8)


def digest(root):
    files = sorted(p for p in root.rglob('*') if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope='module')
def mini(tmp_path_factory):
    return make_mini_dataset(tmp_path_factory.mktemp('mini') / 'mini-spair', seed=3, **SMALL)


def test_same_seed_same_files_other_seed_other_files(mini, tmp_path):
    again = make_mini_dataset(tmp_path / 'again', seed=3, **SMALL)
    assert digest(again) == digest(mini)
    other = make_mini_dataset(tmp_path / 'other', seed=4, **SMALL)
    assert digest(other) != digest(mini)


def test_loads_through_spair_dataset_with_disjoint_photos(mini):
    categories = {}
    for split, views in SMALL['views'].items():
        ds = SPairDataset(mini, split=split, pipeline=[
            dict(type='LoadPairImages'), dict(type='PairResize', size=64),
            dict(type='PackPairInputs')])
        assert len(ds) == views * len(SPLIT_PHOTOS[split])
        categories[split] = {ds.get_data_info(i)['category'] for i in range(len(ds))}
        sample = ds[0]['data_samples']
        assert sample.kps_valid.any() and 'bbox' in sample.pck_ref_sizes
        assert sample.viewpoint_variation in (0, 1, 2) and sample.occlusion in (0, 1, 2)
    assert categories['trn'].isdisjoint(categories['test'])
    assert categories['val'].isdisjoint(categories['test'] | categories['trn'])


def test_rerun_is_a_no_op_and_other_content_is_kept(mini, tmp_path):
    before = digest(mini)
    assert make_mini_dataset(mini, seed=3, **SMALL) == mini
    assert digest(mini) == before
    (tmp_path / 'mine').mkdir()
    (tmp_path / 'mine' / 'notes.txt').write_text('precious')
    with pytest.raises(FileExistsError, match='overwrite'):
        make_mini_dataset(tmp_path / 'mine', **SMALL)
    assert (tmp_path / 'mine' / 'notes.txt').read_text() == 'precious'


def test_annotations_are_spair_json(mini):
    name = (mini / 'Layout' / 'large' / 'test.txt').read_text().split()[0]
    record = json.loads((mini / 'PairAnnotation' / 'test' / f'{name}.json').read_text())
    for field in ('src_imname', 'trg_imname', 'src_imsize', 'trg_imsize', 'src_bndbox',
                  'trg_bndbox', 'category', 'src_kps', 'trg_kps', 'viewpoint_variation',
                  'scale_variation', 'truncation', 'occlusion'):
        assert field in record
    assert len(record['src_kps']) == len(record['trg_kps']) > 0
    assert name.endswith(':' + record['category'])


@pytest.mark.parametrize('seed', range(5))
def test_warp_maps_keypoints_exactly(seed):
    gen = torch.Generator().manual_seed(seed)
    warp = sample_warp((90, 120), gen)
    src = torch.rand(50, 2, generator=gen, dtype=torch.float64) * torch.tensor([119.0, 89.0])
    trg, ok = warp.target_of(src)
    assert ok.float().mean() > 0.9
    residual = (warp.source_of(trg[ok]) - src[ok]).norm(dim=-1)
    assert residual.max() < EXACT_TOL


def blobs(points, height, width, sigma=2.0):
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                            torch.arange(width, dtype=torch.float64), indexing='ij')
    image = torch.zeros(3, height, width, dtype=torch.float64)
    for c, (x, y) in enumerate(points.tolist()):
        image[c] += torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))
    return image


def test_rendered_view_puts_each_blob_on_its_mapped_keypoint():
    height, width = 80, 100
    kps = torch.tensor([[30.0, 25.0], [70.0, 40.0], [50.0, 60.0]], dtype=torch.float64)
    box = torch.tensor([10.0, 10.0, 90.0, 70.0], dtype=torch.float64)
    background = [torch.zeros(3, height, width, dtype=torch.float64)]
    checked = 0
    for seed in range(6):
        gen = torch.Generator().manual_seed(seed)
        image, record = _make_view(blobs(kps, height, width), kps, box, background, gen,
                                   occlusion_prob=0.0)
        for kp_id, (x, y) in zip(record['kps_ids'], record['trg_kps']):
            channel = image[kp_id]
            weight = channel * (channel > 0.5 * channel.max())
            ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing='ij')
            centre = torch.stack([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()
            assert (centre - torch.tensor([x, y])).norm() < 0.35
            checked += 1
    assert checked >= 12
