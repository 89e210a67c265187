"""Reading images from the forms users hand to corrkit."""
from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

ImageLike = str | os.PathLike | Image.Image | np.ndarray


def load_image(image: ImageLike) -> Image.Image:
    """Return an RGB PIL image from a path, a PIL image or an array.

    Paths are read with Pillow, the EXIF orientation applied. Arrays may be
    ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, either ``uint8`` or
    floating in ``[0, 1]``. Any mode (palette, 16-bit, CMYK, ...) becomes RGB.

    Args:
        image: The image.

    Returns:
        An RGB ``PIL.Image.Image``.

    Raises:
        FileNotFoundError: If a path does not exist.
        ValueError: If a file is not a readable image, is larger than Pillow's
            decompression-bomb limit, or an array has the wrong shape.

    Examples:
        >>> load_image(np.zeros((4, 5), dtype=np.uint8)).size
        (5, 4)
    """
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"image file '{path}' does not exist")
        try:
            with Image.open(path) as img:
                img = ImageOps.exif_transpose(img)
                return _to_rgb(img)
        except Image.DecompressionBombError as err:
            raise ValueError(f"image '{path}' is too large to open safely ({err}); raise "
                             f'PIL.Image.MAX_IMAGE_PIXELS if you trust the file') from err
        except (OSError, SyntaxError) as err:
            raise ValueError(f"'{path}' is not a readable image ({err})") from err
    if isinstance(image, Image.Image):
        return _to_rgb(image)
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4)):
            raise ValueError(f'image arrays must be (H, W), (H, W, 3) or (H, W, 4), '
                             f'got {arr.shape}')
        if arr.dtype != np.uint8:
            arr = np.clip(arr.astype(np.float64) * 255.0, 0, 255).round().astype(np.uint8)
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        return _to_rgb(Image.fromarray(arr))
    raise TypeError(f'expected an image path, a PIL image or a numpy array, got {type(image)}')


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == 'RGB':
        return img.copy()
    if img.mode in ('I;16', 'I;16B', 'I;16L', 'I', 'F'):  # scaled by their maximum
        arr = np.clip(np.asarray(img, dtype=np.float32), 0, None)
        arr = arr / max(arr.max(), 1.0) * 255.0
        img = Image.fromarray(arr.astype(np.uint8))
    return img.convert('RGB')


def image_to_tensor(image: Image.Image, size: tuple[int, int] | None = None) -> Tensor:
    """An RGB PIL image as a ``(3, H, W)`` float tensor in ``[0, 255]``, optionally resized.

    Args:
        image: RGB image.
        size: Output ``(H, W)``; bilinear with antialiasing.

    Returns:
        The image tensor.
    """
    if size is not None and (image.height, image.width) != tuple(size):
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    return torch.from_numpy(np.asarray(image, dtype=np.float32).copy()).permute(2, 0, 1)
