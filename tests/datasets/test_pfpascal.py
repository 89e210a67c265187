import numpy as np
import pytest
import torch

from corrkit.datasets import AnnotationError, DatasetNotFoundError, PFPascalDataset

from .fixtures import write_pfpascal

NAN = float('nan')
ANNOTATIONS = {
    '2008_000001': dict(cls='cat', size=(80, 60), bbox=[5, 6, 70, 50],
                        kps=[[10, 20], [NAN, NAN], [30, 40], [60, 10]]),
    '2008_000002': dict(cls='cat', size=(40, 30), bbox=[1, 2, 30, 25],
                        kps=[[4, 5], [6, 7], [NAN, NAN], [35, 20]]),
}
ROWS = [['PF-dataset-PASCAL/JPEGImages/2008_000001.jpg',
         'PF-dataset-PASCAL/JPEGImages/2008_000002.jpg', 8]]
PIPELINE = [dict(type='LoadPairImages'), dict(type='PairFlip'), dict(type='PairResize', size=20),
            dict(type='PackPairInputs')]


def test_reads_layout_and_masks_keypoints_invisible_in_either_image(tmp_path):
    root = write_pfpascal(tmp_path, ROWS, ANNOTATIONS)
    ds = PFPascalDataset(root, split='test', pipeline=PIPELINE)
    assert len(ds) == 1
    sample = ds[0]['data_samples']
    assert sample.category == 'cat' and sample.category_id == 7
    assert sample.kps_valid.tolist() == [True, False, False, True]
    assert sample.pck_ref_sizes['img'] == 20.0
    expected = (torch.tensor([10.0, 20.0]) + 0.5) * torch.tensor([20 / 80, 20 / 60]) - 0.5
    torch.testing.assert_close(sample.src_kps[0], expected)
    np.testing.assert_allclose(sample.src_bbox, [5 / 4, 2, 70 / 4, 50 / 3], rtol=1e-5)


def test_flip_column_mirrors_both_images_and_keypoints(tmp_path):
    rows = [ROWS[0] + [1]]
    root = write_pfpascal(tmp_path, rows, ANNOTATIONS, split='trn')
    plain = PFPascalDataset(root, split='trn', pipeline=PIPELINE[:1] + PIPELINE[2:])[0]
    flipped = PFPascalDataset(root, split='trn', pipeline=PIPELINE)[0]
    assert torch.equal(flipped['inputs'], plain['inputs'].flip(-1))
    for key in ('src_kps', 'trg_kps'):
        a, b = getattr(plain['data_samples'], key), getattr(flipped['data_samples'], key)
        valid = plain['data_samples'].kps_valid
        torch.testing.assert_close(b[valid, 0], 19 - a[valid, 0])  # W - 1 - x
        torch.testing.assert_close(b[valid, 1], a[valid, 1])


def test_csv_without_header_and_bad_rows(tmp_path):
    root = write_pfpascal(tmp_path, ROWS, ANNOTATIONS, header=False)
    assert len(PFPascalDataset(root)) == 1
    root = write_pfpascal(tmp_path / 'bad', [[*ROWS[0][:2], 25]], ANNOTATIONS)
    with pytest.raises(AnnotationError, match='test_pairs.csv, line 2: expected .*class 1-20'):
        PFPascalDataset(root)


def test_missing_or_broken_mat_is_named(tmp_path):
    root = write_pfpascal(tmp_path, ROWS, ANNOTATIONS)
    mat = root / 'Annotations' / 'cat' / '2008_000002.mat'
    mat.write_bytes(mat.read_bytes()[:40])
    with pytest.raises(AnnotationError, match='2008_000002.mat: not a readable .mat file'):
        PFPascalDataset(root)
    mat.unlink()
    with pytest.raises(AnnotationError, match='2008_000002.mat: annotation file does not exist'):
        PFPascalDataset(root)


def test_mat_without_kps_names_the_field(tmp_path):
    from scipy.io import savemat
    root = write_pfpascal(tmp_path, ROWS, ANNOTATIONS)
    savemat(str(root / 'Annotations' / 'cat' / '2008_000001.mat'), {'bbox': np.zeros((1, 4))})
    with pytest.raises(AnnotationError, match="2008_000001.mat: missing field 'kps'"):
        PFPascalDataset(root)


def test_missing_root_and_split_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match='PF-PASCAL|pfpascal'):
        PFPascalDataset(tmp_path / 'absent')
    root = write_pfpascal(tmp_path, ROWS, ANNOTATIONS)
    with pytest.raises(FileNotFoundError, match='val_pairs.csv'):
        PFPascalDataset(root, split='val')
