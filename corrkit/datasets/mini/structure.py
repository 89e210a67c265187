"""Keypoints on image structure: corners of the structure tensor."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2.functional import gaussian_blur

SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))


def corner_response(gray: Tensor, sigma: float = 2.0) -> Tensor:
    """Shi–Tomasi response: the smaller eigenvalue of the smoothed structure tensor.

    Shape:
        - gray: ``(H, W)``
        - output: ``(H, W)``
    """
    kernel = torch.tensor(SOBEL_X, dtype=gray.dtype, device=gray.device)
    image = F.pad(gray[None, None], (1, 1, 1, 1), mode='replicate')
    gx = F.conv2d(image, kernel[None, None])
    gy = F.conv2d(image, kernel.T[None, None])
    size = 2 * round(3 * sigma) + 1
    ixx, iyy, ixy = (gaussian_blur(t, [size, size], [sigma, sigma])
                     for t in (gx * gx, gy * gy, gx * gy))
    half_trace = (ixx + iyy) / 2
    return (half_trace - ((ixx - iyy).square() / 4 + ixy.square()).sqrt())[0, 0]


def structure_keypoints(gray: Tensor, num: int, min_distance: int, margin: int) -> Tensor:
    """The ``num`` strongest corners, at least ``min_distance`` apart, away from the border.

    Args:
        gray: Grey image in ``[0, 1]``.
        num: How many keypoints (fewer when the image has fewer corners).
        min_distance: Suppression radius in pixels.
        margin: Distance to keep from the image border, in pixels.

    Returns:
        ``(x, y)`` integer pixel positions, strongest first.

    Shape:
        - gray: ``(H, W)``
        - output: ``(N, 2)`` with ``N <= num``

    Examples:
        >>> img = torch.zeros(64, 64)
        >>> img[20:44, 20:44] = 1.0
        >>> sorted(structure_keypoints(img, 4, 5, 4).tolist())
        [[21.0, 21.0], [21.0, 42.0], [42.0, 21.0], [42.0, 42.0]]
    """
    response = corner_response(gray)
    window = 2 * min_distance + 1
    peaks = response == F.max_pool2d(response[None, None], window, 1, min_distance)[0, 0]
    peaks &= response > 1e-3 * response.max().clamp(min=1e-12)
    border = torch.zeros_like(peaks)
    border[margin:gray.shape[0] - margin, margin:gray.shape[1] - margin] = True
    ys, xs = torch.nonzero(peaks & border, as_tuple=True)
    order = torch.argsort(response[ys, xs], descending=True, stable=True)[:num]
    return torch.stack([xs[order], ys[order]], dim=-1).to(gray.dtype)
