import torch

from corrkit.ops import normalized_grid, soft_sampler_weights, transfer_keypoints


def test_keypoint_at_cell_centre_takes_that_cells_prediction():
    pred_grid = torch.randn(2, 2, 6, 7)
    cells = normalized_grid(6, 7)
    kps = torch.stack([cells[:, 2, 3], cells[:, 5, 0], cells[:, 0, 6]])[None].expand(2, -1, -1)
    valid = torch.ones(2, 3, dtype=torch.bool)
    out = transfer_keypoints(pred_grid, kps, valid, tau=0.1)  # tau below the cell spacing
    expected = torch.stack([pred_grid[:, :, 2, 3], pred_grid[:, :, 5, 0], pred_grid[:, :, 0, 6]], 1)
    torch.testing.assert_close(out, expected)


def test_weights_are_normalised_and_follow_eq11():
    kps = torch.tensor([[[0.05, -0.02]]])
    w = soft_sampler_weights(kps, 11, 11, tau=0.3)
    torch.testing.assert_close(w.sum(-1), torch.ones(1, 1))
    cells = normalized_grid(11, 11).flatten(1).T
    d = (cells - kps[0, 0]).norm(dim=-1)
    expected = (0.3 - d).clamp(min=0)
    torch.testing.assert_close(w[0, 0], expected / expected.sum())


def test_no_cell_within_tau_falls_back_to_nearest():
    pred_grid = torch.arange(2 * 3 * 3, dtype=torch.float32).view(1, 2, 3, 3)
    kps = torch.tensor([[[0.45, -0.55]]])  # nearest cell: x = 0 (col 1), y = -1 (row 0)
    out = transfer_keypoints(pred_grid, kps, torch.tensor([[True]]), tau=0.01)
    torch.testing.assert_close(out[0, 0], pred_grid[0, :, 0, 1])


def test_identity_flow_moves_keypoints_by_less_than_a_cell():
    grid = normalized_grid(15, 15)[None]
    kps = torch.rand(1, 20, 2) * 2 - 1
    out = transfer_keypoints(grid, kps, torch.ones(1, 20, dtype=torch.bool), tau=0.2)
    assert (out - kps).abs().max() < 2 / 14


def test_invalid_keypoints_are_zero():
    out = transfer_keypoints(torch.randn(1, 2, 4, 4), torch.rand(1, 2, 2),
                             torch.tensor([[False, True]]), tau=0.1)
    assert out[0, 0].abs().sum() == 0 and out[0, 1].abs().sum() > 0
