"""Writing the mini dataset in SPair-71k's layout.

Each pair is a real photo and a random warp of it (thin-plate spline with
perspective, scale and a bend, a textured background, photometric change and
sometimes an occluder). Keypoints sit on corners of the photo and are mapped
exactly through the warp; boxes and SPair's difficulty flags come from the
warp. Train, val and test use disjoint photos; everything follows from the seed.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms.v2 import functional as F

from ...ops.tps import warp_image
from ...structures import DIFFICULTY_FIELDS, swap_difficulty_sides
from ...utils.fileio import atomic_folder, package_file
from ...utils.image import image_to_tensor, load_image
from .photos import PHOTOS, SPLIT_PHOTOS, TEXTURES
from .structure import structure_keypoints
from .warps import Warp, sample_warp

#: Warped views (= pairs) per photo in each split.
DEFAULT_VIEWS = {'trn': 40, 'val': 10, 'test': 20}
STAMP = 'mini_dataset.json'
FORMAT_VERSION = 1


def make_mini_dataset(out_dir: str | Path = 'data/mini-spair', seed: int = 0,
                      views: Mapping[str, int] = DEFAULT_VIEWS, image_size: int = 320,
                      num_keypoints: int = 20, occlusion_prob: float = 0.3,
                      overwrite: bool = False) -> Path:
    """Write the SPair-format mini dataset and return its folder.

    The folder is written to a temporary sibling and renamed at the end, so a
    crash never leaves a half-written dataset. If ``out_dir`` already holds a
    dataset made with the same settings, nothing is done.

    Args:
        out_dir: Destination folder (``data/`` is git-ignored).
        seed: Seed of every random choice; equal seeds give identical files.
        views: Pairs per photo for each split (``trn``, ``val``, ``test``).
        image_size: Longest side of the images, pixels.
        num_keypoints: Corners detected per photo (pairs keep those that stay
            visible).
        occlusion_prob: Probability that a pasted texture patch occludes part
            of the warped view.
        overwrite: Replace an existing, different dataset in ``out_dir``.

    Returns:
        ``out_dir`` as a ``Path``.

    Raises:
        FileExistsError: If ``out_dir`` holds something else and ``overwrite`` is false.
        FileNotFoundError: If scikit-image or matplotlib (the photos) are missing.
    """
    out_dir = Path(out_dir)
    settings = dict(version=FORMAT_VERSION, seed=seed, views=dict(views), image_size=image_size,
                    num_keypoints=num_keypoints, occlusion_prob=occlusion_prob)
    if _complete(out_dir, settings):
        return out_dir
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"'{out_dir}' exists and is not a mini dataset made with these "
                              f"settings; pass overwrite=True (--overwrite) to replace it")
    with atomic_folder(out_dir) as tmp:
        counts = _write(tmp, settings)
        (tmp / STAMP).write_text(json.dumps(dict(settings=settings, pairs=counts), indent=2))
    return out_dir


def _complete(root: Path, settings: dict) -> bool:
    """Whether ``root`` holds a finished dataset made with ``settings``."""
    try:
        stamp = json.loads((root / STAMP).read_text())
    except (OSError, ValueError):
        return False
    return stamp.get('settings') == settings and all(
        (root / 'Layout' / 'large' / f'{split}.txt').is_file() for split in settings['views'])


def _write(root: Path, settings: dict) -> dict[str, int]:
    gen = torch.Generator().manual_seed(settings['seed'])
    size = settings['image_size']
    textures = [_read(package_file(*TEXTURES[name]), size) for name in sorted(TEXTURES)]
    counts = {}
    for split, photos in SPLIT_PHOTOS.items():
        lines = []
        for category in photos:
            source = _read(package_file(*PHOTOS[category]), size)
            folder = root / 'JPEGImages' / category
            folder.mkdir(parents=True, exist_ok=True)
            _save(source, folder / f'{category}_00.jpg')
            kps = _keypoints(source, settings['num_keypoints'])
            box = _box_around(kps, source.shape[-2:])
            for view in range(1, settings['views'][split] + 1):
                name = f'{category}_{view:02d}'
                target, record = _make_view(source, kps, box, textures, gen,
                                            settings['occlusion_prob'])
                _save(target, folder / f'{name}.jpg')
                record.update(category=category, src_imname=f'{category}_00.jpg',
                              trg_imname=f'{name}.jpg')
                if torch.rand(1, generator=gen).item() < 0.5:
                    record = _reverse(record)
                pair_id = (f'{len(lines) + 1:06d}-{record["src_imname"][:-4]}-'
                           f'{record["trg_imname"][:-4]}:{category}')
                record.update(pair_id=pair_id, filename=f'{pair_id}.json')
                annotation = root / 'PairAnnotation' / split / f'{pair_id}.json'
                annotation.parent.mkdir(parents=True, exist_ok=True)
                annotation.write_text(json.dumps(record))
                lines.append(pair_id)
        layout = root / 'Layout' / 'large' / f'{split}.txt'
        layout.parent.mkdir(parents=True, exist_ok=True)
        layout.write_text('\n'.join(lines) + '\n')
        counts[split] = len(lines)
    return counts


def _read(path: Path, size: int) -> Tensor:
    """A photo as float ``(3, H, W)`` in ``[0, 1]``, longest side ``size``."""
    image = load_image(path)
    scale = size / max(image.size)
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                         Image.Resampling.LANCZOS)
    return image_to_tensor(image).double() / 255.0


def _save(image: Tensor, path: Path) -> None:
    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(array).save(path, quality=92)


def _keypoints(image: Tensor, num: int) -> Tensor:
    gray = F.rgb_to_grayscale(image.float()[None])[0, 0].double()
    extent = max(image.shape[-2:])
    return structure_keypoints(gray, num, min_distance=max(4, extent // 20), margin=extent // 12)


def _box_around(kps: Tensor, size: tuple[int, int]) -> Tensor:
    """The object box: the keypoints' box with a margin, inside the image (edge coordinates)."""
    margin = 0.05 * max(size)
    low = (kps.min(0).values - margin).clamp(min=0)
    high = torch.minimum(kps.max(0).values + margin + 1,
                         torch.tensor([size[1], size[0]], dtype=kps.dtype))
    return torch.cat([low, high])


def _box_outline(box: Tensor, per_side: int = 32) -> Tensor:
    t = torch.linspace(0, 1, per_side, dtype=box.dtype)[:, None]
    x1, y1, x2, y2 = box.tolist()
    corners = box.new_tensor([[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]])
    return torch.cat([corners[i] + t * (corners[i + 1] - corners[i]) for i in range(4)])


def _make_view(source: Tensor, kps: Tensor, box: Tensor, textures: list[Tensor],
               gen: torch.Generator, occlusion_prob: float) -> tuple[Tensor, dict]:
    height, width = source.shape[-2:]
    warp = sample_warp((height, width), gen)
    image = _render(source, warp, textures, gen)
    trg_kps, ok = warp.target_of(kps)
    inside = (trg_kps[:, 0] >= 0) & (trg_kps[:, 0] <= width - 1) & \
        (trg_kps[:, 1] >= 0) & (trg_kps[:, 1] <= height - 1)
    outline, _ = warp.target_of(_box_outline(box))
    low, high = outline.min(0).values, outline.max(0).values
    truncated = bool((low < 0).any() or high[0] > width or high[1] > height)
    trg_box = torch.cat([low.clamp(min=0), torch.minimum(high, outline.new_tensor([width, height]))])
    occluded = torch.zeros(len(kps), dtype=torch.bool)
    if torch.rand(1, generator=gen).item() < occlusion_prob:
        image, occluded = _occlude(image, trg_kps, trg_box, textures, gen)
    image = _photometric(image, gen)
    keep = ok & inside & ~occluded
    record = dict(src_imsize=[width, height, 3], trg_imsize=[width, height, 3],
                  src_bndbox=_ints(box), trg_bndbox=_ints(trg_box),
                  src_kps=kps[keep].tolist(), trg_kps=trg_kps[keep].tolist(),
                  kps_ids=torch.nonzero(keep)[:, 0].tolist(),
                  viewpoint_variation=warp.viewpoint, scale_variation=warp.scale,
                  truncation=2 if truncated else 0, occlusion=2 if bool(occluded.any()) else 0)
    return image, record


def _render(source: Tensor, warp: Warp, textures: list[Tensor], gen: torch.Generator) -> Tensor:
    height, width = source.shape[-2:]
    grid = torch.stack(torch.meshgrid(torch.arange(width, dtype=source.dtype),
                                      torch.arange(height, dtype=source.dtype), indexing='xy'), -1)
    src_points = warp.source_of(grid.reshape(-1, 2)).reshape(height, width, 2)
    covered = ((src_points[..., 0] >= -0.5) & (src_points[..., 0] <= width - 0.5) &
               (src_points[..., 1] >= -0.5) & (src_points[..., 1] <= height - 0.5)).to(source.dtype)
    image = warp_image(source[None], lambda q: src_points.reshape(1, -1, 2), (height, width),
                       padding_mode='border')[0]
    background = _texture_patch(textures, gen, height, width)
    return image * covered + background * (1 - covered)


def _texture_patch(textures: list[Tensor], gen: torch.Generator, height: int, width: int) -> Tensor:
    texture = textures[int(torch.randint(len(textures), (1,), generator=gen))]
    patch = F.resize(texture, [height, width], antialias=True)
    tint = 0.6 + 0.4 * torch.rand(3, 1, 1, generator=gen, dtype=patch.dtype)
    return (patch * tint).clamp(0, 1)


def _occlude(image: Tensor, kps: Tensor, box: Tensor, textures: list[Tensor],
             gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Paste a texture rectangle over part of the object box; return the hidden keypoints."""
    height, width = image.shape[-2:]
    frac = 0.15 + 0.15 * torch.rand(2, generator=gen, dtype=kps.dtype)
    h, w = max(2, int(frac[0] * height)), max(2, int(frac[1] * width))
    x1, y1, x2, y2 = box.tolist()
    cx = x1 + (x2 - x1) * torch.rand(1, generator=gen).item()
    cy = y1 + (y2 - y1) * torch.rand(1, generator=gen).item()
    left = int(min(max(0, cx - w / 2), width - w))
    top = int(min(max(0, cy - h / 2), height - h))
    image = image.clone()
    image[:, top:top + h, left:left + w] = _texture_patch(textures, gen, h, w)
    # A keypoint is hidden when its pixel neighbourhood touches the patch.
    hidden = (kps[:, 0] >= left - 1.5) & (kps[:, 0] <= left + w + 0.5) & \
        (kps[:, 1] >= top - 1.5) & (kps[:, 1] <= top + h + 0.5)
    return image, hidden


def _photometric(image: Tensor, gen: torch.Generator) -> Tensor:
    def draw(low: float, high: float) -> float:
        return low + (high - low) * torch.rand(1, generator=gen).item()

    image = image.float()
    image = F.adjust_brightness(image, draw(0.7, 1.3))
    image = F.adjust_contrast(image, draw(0.7, 1.3))
    image = F.adjust_saturation(image, draw(0.6, 1.4))
    image = F.adjust_hue(image, draw(-0.05, 0.05))
    image = F.adjust_gamma(image, draw(0.8, 1.25))
    if torch.rand(1, generator=gen).item() < 0.3:
        sigma = draw(0.5, 1.2)
        image = F.gaussian_blur(image, [5, 5], [sigma, sigma])
    noise = torch.randn(image.shape, generator=gen) * draw(0.0, 0.015)
    return (image + noise).clamp(0, 1).double()


def _ints(box: Tensor) -> list[int]:
    """SPair stores boxes as integers; round outwards so the box still covers the object."""
    return [int(box[0].floor()), int(box[1].floor()), int(box[2].ceil()), int(box[3].ceil())]


def _reverse(record: dict) -> dict:
    """The same pair seen from the warped view: swap sides, and the flags' source/target."""
    swapped = dict(record)
    for a, b in (('src_imname', 'trg_imname'), ('src_imsize', 'trg_imsize'),
                 ('src_bndbox', 'trg_bndbox'), ('src_kps', 'trg_kps')):
        swapped[a], swapped[b] = record[b], record[a]
    for field in DIFFICULTY_FIELDS:
        swapped[field] = swap_difficulty_sides(field, record[field])
    return swapped
