"""Coordinate conventions, coded once.

- Points are ``(x, y)`` = (column, row).
- Normalised coordinates lie in ``[-1, 1]`` with ``align_corners=True``
  semantics: -1 and +1 are the *centres* of the first and last pixel (or cell).
- Flow goes from source to target: ``target = source_grid + flow``, in
  normalised target coordinates.
"""
from __future__ import annotations

import torch
from torch import Tensor


def _size_tensor(size: tuple[int, int] | Tensor, like: Tensor) -> Tensor:
    """``(H, W)`` as a ``(..., 2)`` tensor ordered ``(W, H)`` to match ``(x, y)``."""
    size = torch.as_tensor(size, dtype=like.dtype, device=like.device)
    return size.flip(-1)


def pixel_to_normalized(points: Tensor, size: tuple[int, int] | Tensor) -> Tensor:
    """Map pixel coordinates to normalised ``[-1, 1]`` coordinates.

    Args:
        points: Points ``(x, y)`` in pixels, pixel centres at integers.
        size: Image size ``(H, W)``, or a ``(..., 2)`` tensor of sizes that
            broadcasts against ``points``.

    Returns:
        The points in normalised coordinates.

    Shape:
        - points: ``(..., 2)``
        - output: ``(..., 2)``

    Examples:
        >>> pixel_to_normalized(torch.tensor([[0.0, 0.0], [239.0, 119.5]]), (240, 240))
        tensor([[-1., -1.],
                [ 1.,  0.]])
    """
    extent = (_size_tensor(size, points) - 1).clamp(min=1)
    return points * 2 / extent - 1


def normalized_to_pixel(points: Tensor, size: tuple[int, int] | Tensor) -> Tensor:
    """Inverse of :func:`pixel_to_normalized`.

    Args:
        points: Points ``(x, y)`` in normalised coordinates.
        size: Image size ``(H, W)``, or a ``(..., 2)`` tensor of sizes.

    Returns:
        The points in pixels.

    Shape:
        - points: ``(..., 2)``
        - output: ``(..., 2)``

    Examples:
        >>> normalized_to_pixel(torch.tensor([[-1.0, 1.0]]), (30, 20))
        tensor([[ 0., 29.]])
    """
    extent = (_size_tensor(size, points) - 1).clamp(min=1)
    return (points + 1) * extent / 2


def normalized_grid(height: int, width: int, *, device: torch.device | str | None = None,
                    dtype: torch.dtype | None = None) -> Tensor:
    """The normalised ``(x, y)`` coordinates of every cell centre of a grid.

    Args:
        height: Number of rows.
        width: Number of columns.
        device: Device of the result.
        dtype: Floating dtype of the result (default: torch's default dtype).

    Returns:
        ``grid[0]`` holds x and ``grid[1]`` holds y of each cell.

    Shape:
        - output: ``(2, height, width)``

    Examples:
        >>> normalized_grid(2, 3)[0]
        tensor([[-1.,  0.,  1.],
                [-1.,  0.,  1.]])
    """
    ys = torch.linspace(-1, 1, height, device=device, dtype=dtype) if height > 1 else \
        torch.zeros(1, device=device, dtype=dtype)
    xs = torch.linspace(-1, 1, width, device=device, dtype=dtype) if width > 1 else \
        torch.zeros(1, device=device, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack((grid_x, grid_y))


def flow_to_target(flow: Tensor) -> Tensor:
    """Absolute normalised target coordinates from a source-to-target flow.

    Args:
        flow: Flow in normalised target coordinates.

    Returns:
        ``source_grid + flow``: for every source cell, where it lands.

    Shape:
        - flow: ``(B, 2, H, W)``
        - output: ``(B, 2, H, W)``
    """
    grid = normalized_grid(flow.shape[-2], flow.shape[-1], device=flow.device, dtype=flow.dtype)
    return flow + grid


def target_to_flow(target: Tensor) -> Tensor:
    """Inverse of :func:`flow_to_target`.

    Args:
        target: Absolute normalised target coordinates per source cell.

    Returns:
        The flow ``target - source_grid``.

    Shape:
        - target: ``(B, 2, H, W)``
        - output: ``(B, 2, H, W)``
    """
    grid = normalized_grid(target.shape[-2], target.shape[-1], device=target.device,
                           dtype=target.dtype)
    return target - grid


def rescale_points(points: Tensor, from_size: tuple[int, int], to_size: tuple[int, int]) -> Tensor:
    """Map pixel coordinates through an image resize from ``from_size`` to ``to_size``.

    Resizing (PIL, ``torch.nn.functional.interpolate`` with
    ``align_corners=False``) maps the pixel area ``[0, W]`` onto ``[0, W']``, so
    pixel centre ``x`` goes to ``(x + 0.5) * W' / W - 0.5``.

    Args:
        points: ``(x, y)`` pixels in the original image.
        from_size: Original ``(H, W)``.
        to_size: Resized ``(H', W')``.

    Returns:
        The points in pixels of the resized image.

    Shape:
        - points: ``(..., 2)``
        - output: ``(..., 2)``

    Examples:
        >>> rescale_points(torch.tensor([[-0.5, 99.5]]), (100, 100), (50, 200))
        tensor([[-0.5000, 49.5000]])
    """
    scale = _size_tensor(to_size, points) / _size_tensor(from_size, points)
    return (points + 0.5) * scale - 0.5
