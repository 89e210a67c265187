"""The real-photo stereo check: exact correspondences from the Middlebury motorcycle pair."""
import json

import numpy as np
import pytest

from corrkit.datasets import SPairDataset
from corrkit.datasets.mini.stereo import (FILES, make_stereo_pairs, stereo_correspondences,
                                          zero_motion_pck)
from corrkit.utils.fileio import package_file
from corrkit.utils.image import load_image


@pytest.fixture(scope='module')
def stereo(tmp_path_factory):
    return make_stereo_pairs(tmp_path_factory.mktemp('stereo') / 'check', step=40)


def _disparity():
    with np.load(package_file('skimage', FILES['disparity'])) as data:
        return data['arr_0']


def test_correspondences_follow_the_disparity_and_the_photos_agree():
    disparity = _disparity()
    left, right = stereo_correspondences(disparity, step=30)
    assert len(left) > 200
    x, y = left[:, 0].astype(int), left[:, 1].astype(int)
    np.testing.assert_allclose(right[:, 0], left[:, 0] - disparity[y, x])
    np.testing.assert_array_equal(right[:, 1], left[:, 1])
    # the photographs confirm the direction: 7x7 grey patches agree at the true position
    # far better than at the position shifted the other way
    grey = [np.asarray(load_image(package_file('skimage', FILES[v])).convert('L'), float)
            for v in ('left', 'right')]

    def patch(image, px, py):
        px, py = int(round(px)), int(round(py))
        return image[py - 3:py + 4, px - 3:px + 4]

    inner = [i for i in range(len(left)) if 70 <= x[i] <= 670 and 5 <= y[i] <= 494]
    true = np.mean([np.abs(patch(grey[0], *left[i]) - patch(grey[1], *right[i])).mean()
                    for i in inner])
    wrong = np.mean([np.abs(patch(grey[0], *left[i]) -
                            patch(grey[1], left[i, 0] + disparity[y[i], x[i]], y[i])).mean()
                     for i in inner])
    assert true < wrong / 3


def test_hidden_and_unknown_points_are_dropped():
    disparity = np.full((4, 20), 3.0)
    disparity[:, 12:] = 8.0  # nearer surface: right x 4..11 sees it, hiding left x 7..14
    disparity[2, 5] = np.inf
    left, right = stereo_correspondences(disparity, step=1, margin=0)
    kept = {(int(x), int(y)) for x, y in left}
    assert (5, 2) not in kept and (5, 1) in kept
    assert not any(7 <= x <= 11 for x, _ in kept)  # behind the near surface in the right view
    assert all(x >= 3 for x, _ in kept)  # x - d < 0: outside the right view
    assert (right[:, 0] >= 0).all()


def test_both_directions_load_as_spair_pairs(stereo):
    ds = SPairDataset(stereo, split='test', pipeline=[dict(type='LoadPairImages'),
                                                      dict(type='PackPairInputs')])
    assert len(ds) == 2
    forward, backward = (ds[i]['data_samples'] for i in range(2))
    assert forward.metainfo['category'] == 'motorcycle'
    np.testing.assert_array_equal(forward.src_kps.numpy(), backward.trg_kps.numpy())
    np.testing.assert_array_equal(forward.trg_kps.numpy(), backward.src_kps.numpy())
    shift = (forward.src_kps - forward.trg_kps).numpy()
    assert (shift[:, 1] == 0).all() and 7 < shift[:, 0].min() and shift[:, 0].max() < 60
    assert forward.metainfo['pck_ref_sizes']['bbox'] == 741


def test_made_once_and_a_foreign_folder_is_kept(stereo, tmp_path):
    stamp = (stereo / 'stereo_pairs.json').stat().st_mtime_ns
    assert make_stereo_pairs(stereo, step=40) == stereo
    assert (stereo / 'stereo_pairs.json').stat().st_mtime_ns == stamp
    foreign = tmp_path / 'mine'
    foreign.mkdir()
    (foreign / 'notes.txt').write_text('keep me')
    with pytest.raises(FileExistsError, match='mine.*overwrite'):
        make_stereo_pairs(foreign)
    assert (foreign / 'notes.txt').read_text() == 'keep me'


def test_zero_motion_floor(stereo):
    pck = zero_motion_pck(stereo, (0.005, 0.05, 0.1))
    # every disparity lies between 7 and 60 px: none within 3.7 px, all within 74 px
    assert pck['PCK@0.005'] == 0 and pck['PCK@0.1'] == 100
    assert 0 < pck['PCK@0.05'] < 100
    settings = json.loads((stereo / 'stereo_pairs.json').read_text())
    assert settings['pairs'] == 2 and settings['keypoints'] > 100
