"""Photometric augmentation of each image of a pair."""
from __future__ import annotations

from torchvision.transforms import v2

from ...registry import TRANSFORMS
from ._pair import SIDES


@TRANSFORMS.register_module()
class PairPhotometricAugment:
    """CATs' photometric augmentations, each applied with probability ``prob``.

    The operations of CATs' and TransforMatcher's training recipe (there with
    albumentations), drawn independently for the source and the target image,
    with torchvision's nearest equivalents: grey-scale, posterize (4 bits),
    equalize, sharpen (fixed factor 2 where albumentations draws a blend),
    brightness/contrast (±0.2), solarize (threshold 128) and colour jitter
    (±0.2 each, as albumentations' defaults). Geometry is untouched, so
    keypoints stay put.

    Args:
        prob: Probability of each operation.
        brightness: Brightness jitter factor range (as ``ColorJitter``).
        contrast: Contrast jitter factor range.
        saturation: Saturation jitter factor range.
        hue: Hue jitter range, at most 0.5.
    """

    def __init__(self, prob: float = 0.2, brightness: float = 0.2, contrast: float = 0.2,
                 saturation: float = 0.2, hue: float = 0.2):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must lie in [0, 1], got {prob}')
        self.prob = prob
        self.ops = v2.Compose([
            v2.RandomGrayscale(p=prob),
            v2.RandomPosterize(bits=4, p=prob),
            v2.RandomEqualize(p=prob),
            v2.RandomAdjustSharpness(sharpness_factor=2.0, p=prob),
            v2.RandomApply([v2.ColorJitter(brightness=brightness, contrast=contrast)], p=prob),
            v2.RandomSolarize(threshold=128, p=prob),
            v2.RandomApply([v2.ColorJitter(brightness, contrast, saturation, hue)], p=prob),
        ])

    def __call__(self, results: dict) -> dict:
        for side in SIDES:
            results[f'{side}_img'] = self.ops(results[f'{side}_img'])
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob})'
