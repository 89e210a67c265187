import numpy as np
import pytest
import torch

from corrkit.datasets import AnnotationError, PFWillowDataset

from .fixtures import write_pfwillow

SRC = np.stack([np.linspace(10, 100, 10), np.linspace(5, 80, 10)], axis=1)
TRG = SRC[::-1] * 0.5 + 3
PIPELINE = [dict(type='LoadPairImages'), dict(type='PairResize', size=(45, 60)),
            dict(type='PackPairInputs')]


def test_reads_csv_classes_from_paths_and_keypoint_box_threshold(tmp_path):
    root = write_pfwillow(tmp_path, [('car(G)/car_01.png', 'car(G)/car_02.png', SRC, TRG),
                                     ('duck(S)/duck_01.png', 'duck(S)/duck_02.png', SRC, TRG)])
    ds = PFWillowDataset(root, pipeline=PIPELINE)
    assert len(ds) == 2
    sample = ds[1]['data_samples']
    assert sample.category == 'duck(S)' and sample.category_id == 3
    assert sample.kps_valid.all() and len(sample.src_kps) == 10
    assert sample.trg_bbox is None and 'bbox' not in sample.pck_ref_sizes
    # 120x90 -> 60x45 halves both axes
    trg = (torch.tensor(TRG.copy(), dtype=torch.float32) + 0.5) * 0.5 - 0.5
    torch.testing.assert_close(sample.trg_kps, trg)
    span = trg.max(0).values - trg.min(0).values
    assert sample.pck_ref_sizes['bbox-kp'] == pytest.approx(float(span.max()))
    # TransforMatcher's code pads the 10 points to 40 with -2 and takes the box of all 40
    padded = torch.cat([trg, torch.full((30, 2), -2.0)])
    loose = (padded.max(0).values - padded.min(0).values).max()
    assert sample.pck_ref_sizes['bbox-kp-padded'] == pytest.approx(float(loose))
    assert sample.pck_ref_sizes['bbox-kp-padded'] > sample.pck_ref_sizes['bbox-kp']


def test_only_the_test_split_exists(tmp_path):
    with pytest.raises(ValueError, match="no split 'trn'"):
        PFWillowDataset(tmp_path, split='trn')


def test_short_row_is_named(tmp_path):
    root = write_pfwillow(tmp_path, [('car(G)/a.png', 'car(G)/b.png', SRC, TRG)])
    lines = (root / 'test_pairs.csv').read_text().splitlines()
    (root / 'test_pairs.csv').write_text('\n'.join([lines[0], lines[1].rsplit(',', 3)[0]]))
    with pytest.raises(AnnotationError, match='test_pairs.csv, line 2: expected 2 image paths'):
        PFWillowDataset(root)


def test_path_without_a_known_class_folder_is_named(tmp_path):
    root = write_pfwillow(tmp_path, [('extra/car(G)/a.png', 'extra/car(G)/b.png', SRC, TRG)])
    with pytest.raises(AnnotationError, match="line 2: image path .* does not name one of"):
        PFWillowDataset(root)
