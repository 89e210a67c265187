"""Pair transforms: keypoints follow the pixels they mark; nothing is clamped."""
import numpy as np
import pytest
import torch
from PIL import Image

from corrkit.datasets.transforms import (LoadPairImages, PackPairInputs, PairPhotometricAugment,
                                         PairRandomCrop, PairResize)
from corrkit.registry import TRANSFORMS


def blob_image(path, width, height, points, sigma=2.5):
    """An RGB image with a Gaussian blob of a different colour channel at each point."""
    ys, xs = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 3))
    for c, (x, y) in enumerate(points):
        img[..., c] += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))
    Image.fromarray((img * 255).round().astype(np.uint8)).save(path)


def centroid(channel: torch.Tensor) -> torch.Tensor:
    weight = channel.double().clamp(min=0)
    weight = weight * (weight > 0.2 * weight.max())
    ys, xs = torch.meshgrid(torch.arange(channel.shape[0]), torch.arange(channel.shape[1]),
                            indexing='ij')
    return torch.stack([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()


def results_for(tmp_path, src_points, trg_points, size=(97, 61)):
    for name, points in (('s.png', src_points), ('t.png', trg_points)):
        blob_image(tmp_path / name, *size, points)
    return dict(src_img_path=str(tmp_path / 's.png'), trg_img_path=str(tmp_path / 't.png'),
                src_kps=np.asarray(src_points, np.float32),
                trg_kps=np.asarray(trg_points, np.float32),
                kps_valid=np.ones(len(src_points), bool), src_bbox=None, trg_bbox=None,
                pair_id='p')


POINTS = [(20.0, 15.0), (70.0, 40.0), (48.0, 30.0)]


@pytest.mark.parametrize('size', [(40, 50), (120, 200)])
def test_resized_keypoints_land_on_their_blobs(tmp_path, size):
    results = LoadPairImages()(results_for(tmp_path, POINTS, POINTS[::-1]))
    out = PackPairInputs()(PairResize(size)(results))
    sample, images = out['data_samples'], out['inputs']
    for side, image in zip(('src_kps', 'trg_kps'), images):
        for c in range(3):
            torch.testing.assert_close(centroid(image[c]), getattr(sample, side)[c].double(),
                                       atol=0.25, rtol=0)


def test_random_crop_keeps_every_valid_keypoint_inside_and_on_its_blob(tmp_path):
    base = LoadPairImages()(results_for(tmp_path, POINTS, POINTS))
    crop = PairRandomCrop(prob=1.0, padding=5)
    sizes = set()
    for seed in range(20):
        torch.manual_seed(seed)
        results = crop({k: (v.clone() if isinstance(v, torch.Tensor) else v)
                        for k, v in base.items()})
        image, kps = results['src_img'], results['src_kps']
        height, width = image.shape[-2:]
        sizes.add((height, width))
        assert (kps[:, 0] >= 5 - 1e-6).all() and (kps[:, 0] <= width - 1 - 5 + 1e-6).all()
        assert (kps[:, 1] >= 5 - 1e-6).all() and (kps[:, 1] <= height - 1 - 5 + 1e-6).all()
        for c in range(3):
            torch.testing.assert_close(centroid(image[c]), kps[c].double(), atol=0.1, rtol=0)
    assert len(sizes) > 10  # the window really is random


def test_keypoint_moved_off_the_image_becomes_invalid_not_clamped(tmp_path, monkeypatch):
    # on a 97x61 image: the second point is on the last pixel in 1-based pixels (tolerated),
    # the third lies well outside
    points = [(20.0, 15.0), (97.0, 61.0), (120.0, 30.0)]
    monkeypatch.setattr(LoadPairImages, '_warned_outside', False)
    with pytest.warns(UserWarning, match='outside their image were marked invalid'):
        results = LoadPairImages()(results_for(tmp_path, points, POINTS))
    assert results['kps_valid'].tolist() == [True, True, False]
    results['kps_valid'][:] = True  # pretend an annotation put it there on purpose
    sample = PackPairInputs()(PairResize(30)(results))['data_samples']
    assert sample.kps_valid.tolist() == [True, True, False]
    assert sample.src_kps[2, 0] > 30  # kept where it maps, outside the frame


def test_photometric_changes_pixels_only(tmp_path):
    results = LoadPairImages()(results_for(tmp_path, POINTS, POINTS))
    before = results['src_img'].clone(), results['src_kps'].clone()
    torch.manual_seed(0)
    out = PairPhotometricAugment(prob=1.0)(results)
    assert not torch.equal(out['src_img'], before[0])
    assert out['src_img'].dtype == torch.uint8 and out['src_img'].shape == before[0].shape
    assert torch.equal(out['src_kps'], before[1])
    same = PairPhotometricAugment(prob=0.0)(dict(out, src_img=before[0].clone()))
    assert torch.equal(same['src_img'], before[0])


def test_pack_refuses_images_of_different_sizes(tmp_path):
    results = LoadPairImages()(results_for(tmp_path, POINTS, POINTS))
    results['trg_img'] = results['trg_img'][..., :50]
    with pytest.raises(ValueError, match='add PairResize'):
        PackPairInputs()(results)


@pytest.mark.parametrize('bad', [dict(type='PairResize', size=0),
                                 dict(type='PairRandomCrop', prob=2.0),
                                 dict(type='PairPhotometricAugment', prob=-1)])
def test_bad_arguments_are_named(bad):
    with pytest.raises(ValueError, match='size|prob'):
        TRANSFORMS.build(bad)


def transform_names():
    TRANSFORMS.import_from_location()
    return sorted(TRANSFORMS.module_dict)


@pytest.mark.parametrize('name', transform_names())
def test_every_transform_keeps_the_pair_contract(tmp_path, name):
    """Each registered transform, in a minimal pipeline, yields a valid packed pair."""
    transform = TRANSFORMS.build(dict(type=name))
    results = results_for(tmp_path, POINTS, POINTS)
    steps = [LoadPairImages(), PairResize(32), PackPairInputs()]
    same = [i for i, step in enumerate(steps) if type(step) is type(transform)]
    if same:
        steps[same[0]] = transform if name != 'PairResize' else PairResize(32)
    else:
        steps.insert(1, transform)
    for step in steps:
        results = step(results)
    assert results['inputs'].shape == (2, 3, 32, 32)
    sample = results['data_samples']
    assert sample.src_kps.shape == sample.trg_kps.shape == (3, 2)
    assert sample.kps_valid.dtype == torch.bool


def test_any_image_mode_and_exif_orientation_become_upright_rgb(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (30, 50), dtype=np.uint8), 'L').save(tmp_path / 'g.png')
    rotated = Image.fromarray(rng.integers(0, 255, (30, 50, 3), dtype=np.uint8))
    exif = rotated.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": stored 50 wide, shown 30 wide
    rotated.save(tmp_path / 'r.jpg', exif=exif)
    results = LoadPairImages()(dict(
        src_img_path=str(tmp_path / 'g.png'), trg_img_path=str(tmp_path / 'r.jpg'),
        src_kps=np.array([[40.0, 20.0]], np.float32), trg_kps=np.array([[20.0, 40.0]], np.float32),
        kps_valid=np.array([True]), src_bbox=None, trg_bbox=None))
    assert results['src_img'].shape == (3, 30, 50) and results['src_img'].dtype == torch.uint8
    assert results['trg_img'].shape == (3, 50, 30)  # upright, as annotated
    assert results['trg_ori_shape'] == (50, 30) and results['kps_valid'].tolist() == [True]


def test_random_crop_follows_keypoints_and_clamps_the_box(tmp_path):
    results = LoadPairImages()(dict(results_for(tmp_path, POINTS, POINTS),
                                    src_bbox=np.array([0, 0, 97, 61], np.float32)))
    box_sizes = set()
    for seed in range(10):
        torch.manual_seed(seed)
        out = PairRandomCrop(prob=1.0, padding=5)({k: (v.clone() if isinstance(v, torch.Tensor)
                                                       else v) for k, v in results.items()})
        height, width = out['src_img'].shape[-2:]
        box = out['src_bbox'][0].tolist()
        assert box[0] == 0 and box[1] == 0 and box[2] == width and box[3] == height
        box_sizes.add((height, width))
    assert len(box_sizes) > 5  # the whole-image box did not stop the crop


def test_random_crop_with_one_keypoint_keeps_half_the_room(tmp_path):
    results = LoadPairImages()(results_for(tmp_path, POINTS, POINTS))
    results['kps_valid'] = torch.tensor([True, False, False])  # only (20, 15) on 97x61
    for seed in range(20):
        torch.manual_seed(seed)
        out = PairRandomCrop(prob=1.0)({k: (v.clone() if isinstance(v, torch.Tensor) else v)
                                        for k, v in results.items()})
        x, y = out['src_kps'][0].tolist()
        height, width = out['src_img'].shape[-2:]
        assert x >= 10 - 1 and y >= 7.5 - 1  # at least half of the 20 / 15 px before it
        assert width - 1 - x >= 38 - 1 and height - 1 - y >= 22.5 - 1  # and half of 76 / 45


def test_pack_carries_the_difficulty_fields_and_reference_sizes(tmp_path):
    from corrkit.structures import DIFFICULTY_FIELDS
    flags = {field: 1 for field in DIFFICULTY_FIELDS}
    results = LoadPairImages()(dict(results_for(tmp_path, POINTS, POINTS), **flags))
    sample = PackPairInputs()(PairResize(40)(results))['data_samples']
    assert {field: sample.get(field) for field in DIFFICULTY_FIELDS} == flags
    assert sample.pck_ref_sizes['img'] == 40.0 and 'bbox' not in sample.pck_ref_sizes


@pytest.mark.parametrize('keep_ratio', [False, True])
def test_resize_keeps_the_map_back_to_the_original_target(tmp_path, keep_ratio):
    """Blobs land where the keypoints say after a stretching or an aspect-keeping resize, and
    ``trg_frame`` maps the frame's keypoints back onto the original annotation exactly."""
    results = LoadPairImages()(dict(results_for(tmp_path, POINTS, POINTS),
                                    trg_bbox=np.array([10, 5, 80, 50], np.float32)))
    torch.manual_seed(0)
    results = PairRandomCrop(prob=1.0, padding=5)(results)
    results = PairResize(120, keep_ratio=keep_ratio)(results)
    image = results['trg_img'].as_subclass(torch.Tensor)
    assert image.shape == (3, 120, 120)
    kps = results['trg_kps'].as_subclass(torch.Tensor)
    for c, point in enumerate(kps):  # the keypoints still mark their blobs
        assert torch.dist(centroid(image[c].float()), point.double()) < 0.6
    if keep_ratio:  # one scale for both axes, padding below or right of the content
        ax, _, ay, _ = results['trg_frame']
        assert ax == pytest.approx(ay, rel=0.02)
        assert image[:, -1].sum() == 0 or image[:, :, -1].sum() == 0
    sample = PackPairInputs()(results)['data_samples']
    ax, bx, ay, by = sample.trg_frame
    back = torch.stack([(sample.trg_kps[:, 0] - bx) / ax, (sample.trg_kps[:, 1] - by) / ay], -1)
    torch.testing.assert_close(back, torch.tensor(POINTS), atol=1e-4, rtol=0)
    torch.testing.assert_close(sample.trg_kps_original, torch.tensor(POINTS))
    assert sample.pck_ref_sizes_original['bbox'] == pytest.approx(70.0)  # max(80-10, 50-5)


def test_a_flip_drops_the_map_back(tmp_path):
    from corrkit.datasets.transforms import PairFlip
    results = LoadPairImages()(dict(results_for(tmp_path, POINTS, POINTS), flip=True))
    results = PairResize(64)(PairFlip()(results))
    sample = PackPairInputs()(results)['data_samples']
    assert 'trg_frame' not in sample and 'pck_ref_sizes_original' not in sample
