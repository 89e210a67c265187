import torch

from corrkit.ops import (flow_to_target, normalized_grid, normalized_to_pixel, pixel_to_normalized,
                         rescale_points, target_to_flow)


def test_pixel_normalized_round_trip_and_corners():
    pts = torch.tensor([[0.0, 0.0], [319.0, 239.0], [12.5, 100.25]])
    norm = pixel_to_normalized(pts, (240, 320))
    torch.testing.assert_close(norm[0], torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(norm[1], torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(normalized_to_pixel(norm, (240, 320)), pts)


def test_normalized_grid_is_x_then_y_with_corner_centres():
    grid = normalized_grid(3, 5)
    assert grid.shape == (2, 3, 5)
    assert grid[0, 0].tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]  # x varies along columns
    assert grid[1, :, 0].tolist() == [-1.0, 0.0, 1.0]  # y varies along rows


def test_flow_target_round_trip():
    flow = torch.randn(2, 2, 4, 5)
    torch.testing.assert_close(target_to_flow(flow_to_target(flow)), flow)
    torch.testing.assert_close(flow_to_target(torch.zeros(1, 2, 4, 5))[0], normalized_grid(4, 5))


def test_rescale_points_maps_pixel_areas():
    pts = torch.tensor([[0.0, 0.0], [99.0, 49.0]])
    out = rescale_points(pts, (50, 100), (100, 200))
    torch.testing.assert_close(out, torch.tensor([[0.5, 0.5], [198.5, 98.5]]))
    torch.testing.assert_close(rescale_points(out, (100, 200), (50, 100)), pts)
