"""Reading images from the forms users hand to corrkit."""
from __future__ import annotations

import os
import threading

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

ImageLike = str | os.PathLike | Image.Image | np.ndarray

#: The most pixels (width x height) an image file may have; larger files are refused
#: before they are decoded. ``None`` (the default) defers to ``$CORRKIT_MAX_IMAGE_PIXELS``
#: and then to Pillow's ``PIL.Image.MAX_IMAGE_PIXELS`` (about 89 million pixels).
#: Set it (or the variable) to a larger number to open large files you trust.
MAX_IMAGE_PIXELS: int | None = None

#: The environment variable read when :data:`MAX_IMAGE_PIXELS` is ``None``: a positive
#: whole number of pixels, or ``none`` for no limit.
MAX_PIXELS_ENV = 'CORRKIT_MAX_IMAGE_PIXELS'

# Image.open runs with Pillow's own check off, so that corrkit's limit (larger or smaller)
# alone decides; the lock keeps two threads from interleaving the swap of Pillow's setting.
_PILLOW_LIMIT_LOCK = threading.Lock()


def max_image_pixels() -> int | None:
    """The pixel limit of image files now in force (``None``: no limit).

    :data:`MAX_IMAGE_PIXELS` if set, else ``$CORRKIT_MAX_IMAGE_PIXELS``, else
    Pillow's ``PIL.Image.MAX_IMAGE_PIXELS``.

    Raises:
        ValueError: If the environment variable is neither a positive whole number
            nor ``none``.

    Examples:
        >>> limit = max_image_pixels()
        >>> limit is None or limit > 0
        True
    """
    if MAX_IMAGE_PIXELS is not None:
        return int(MAX_IMAGE_PIXELS)
    value = os.environ.get(MAX_PIXELS_ENV, '').strip()
    if not value:
        return Image.MAX_IMAGE_PIXELS
    if value.lower() == 'none':
        return None
    try:
        limit = int(value.replace('_', ''))
    except ValueError:
        limit = 0
    if limit <= 0:
        raise ValueError(f"${MAX_PIXELS_ENV} must be a positive number of pixels or 'none', "
                         f'got {value!r}')
    return limit


def _open_checked(path: str) -> Image.Image:
    """``Image.open`` (the header only), refusing a file above the pixel limit."""
    limit = max_image_pixels()
    with _PILLOW_LIMIT_LOCK:
        pillow_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            img = Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = pillow_limit
    width, height = img.size
    if limit is not None and width * height > limit:
        img.close()
        raise ValueError(
            f"image '{path}' is too large to open safely: {width} x {height} = "
            f'{width * height:,} pixels, above the limit of {limit:,} pixels (not decoded). '
            f'If you trust the file, raise the limit: ${MAX_PIXELS_ENV} or '
            'corrkit.utils.image.MAX_IMAGE_PIXELS')
    return img


def load_image(image: ImageLike) -> Image.Image:
    """Return an RGB PIL image from a path, a PIL image or an array.

    Paths are read with Pillow, the EXIF orientation applied; a file of more
    pixels than :func:`max_image_pixels` is refused from its header, before it
    is decoded. Arrays may be
    ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, either ``uint8`` or
    floating in ``[0, 1]``. Any mode (palette, 16-bit, CMYK, ...) becomes RGB.

    Args:
        image: The image.

    Returns:
        An RGB ``PIL.Image.Image``.

    Raises:
        FileNotFoundError: If a path does not exist.
        ValueError: If a file is not a readable image, has more pixels than
            :func:`max_image_pixels` (the message names the file, its width x
            height and the limit), or an array has the wrong shape.

    Examples:
        >>> load_image(np.zeros((4, 5), dtype=np.uint8)).size
        (5, 4)
    """
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"image file '{path}' does not exist")
        max_image_pixels()  # a bad $CORRKIT_MAX_IMAGE_PIXELS is its own error, raised here
        try:
            with _open_checked(path) as img:
                img = ImageOps.exif_transpose(img)
                return _to_rgb(img)
        except Image.DecompressionBombError as err:  # an animation frame larger than its canvas
            raise ValueError(f"image '{path}' is too large to open safely ({err}); if you "
                             f'trust the file, raise PIL.Image.MAX_IMAGE_PIXELS') from err
        except ValueError as err:  # ours name the file; Pillow's (a bad SGI mode...) do not
            if path in str(err):
                raise
            raise ValueError(f"'{path}' is not a readable image ({err})") from err
        except (OSError, SyntaxError, EOFError) as err:
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
