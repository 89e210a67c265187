import math

import torch

from corrkit.evaluation import pck


def test_boundary_is_inclusive():
    gt = torch.zeros(1, 2, 2)
    pred = torch.tensor([[[10.0, 0.0], [6.0, 8.0]]])  # both exactly 10 px away
    ref = torch.tensor([40.0])
    assert pck(pred, gt, torch.ones(1, 2, dtype=torch.bool), ref, alpha=0.25).item() == 1.0
    # just beyond the threshold
    pred_out = pred + torch.tensor([[1e-3, 0.0], [0.0, 0.0]])
    assert pck(pred_out, gt, torch.ones(1, 2, dtype=torch.bool), ref, alpha=0.25).item() == 0.5


def test_masked_keypoints_do_not_count_and_per_pair_reference():
    gt = torch.zeros(2, 3, 2)
    pred = torch.tensor([[[1.0, 0], [50, 0], [999, 0]], [[1.0, 0], [50, 0], [999, 0]]])
    valid = torch.tensor([[True, True, False], [True, True, True]])
    out = pck(pred, gt, valid, torch.tensor([100.0, 1000.0]), alpha=0.1)
    torch.testing.assert_close(out, torch.tensor([0.5, 2 / 3]))


def test_pair_without_valid_keypoints_is_nan():
    out = pck(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), torch.zeros(1, 2, dtype=torch.bool),
              100.0, alpha=0.1)
    assert math.isnan(out.item())
