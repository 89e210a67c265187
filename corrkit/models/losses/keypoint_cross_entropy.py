"""Cross-entropy over target cells for keypoint matchers, plus an optional regression term."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ...ops import normalized_to_pixel
from ...registry import LOSSES
from ..base import KeypointPrediction, SimilarityLoss

DISTRIBUTIONS = ('gaussian', 'bilinear')
MIN_TEMPERATURE = 1e-3


@LOSSES.register_module()
class KeypointCrossEntropyLoss(SimilarityLoss):
    """Cross-entropy of each source keypoint's similarities over target cells against its true cell.

    ``softmax(similarity / temperature)`` over the ``Ht · Wt`` cells is compared
    with a target distribution around the true (sub-cell) target keypoint:

    - ``'gaussian'``: ``exp(-d² / (2 sigma²))`` of the distance ``d`` in cells
      from each cell centre to the true point, normalised to sum to one;
    - ``'bilinear'``: the four cells around the true point with its bilinear
      weights (a "soft" one-hot whose expectation is exactly the true point).

    True points outside the frame are clamped to its border. With
    ``regression_weight > 0`` and a prediction given, the squared L2 distance
    between ``pred.kps`` and the true points (normalised coordinates, as
    :class:`KeypointL2Loss`) is added, times ``regression_weight``.

    Both terms are averaged over the valid keypoints of the whole batch (each
    keypoint weighs the same); masked keypoints contribute nothing and get zero
    gradient. Without any valid keypoint the loss is 0, still connected to the
    graph so that a backward pass runs.

    With a fixed temperature, the loss can also fall by reshaping the softmax's
    spread rather than by ranking the true cell first. With
    ``learn_temperature=True`` the temperature is a trained parameter (its log,
    as CLIP's and GeoAware-SC's learned scale), so that one scalar can fit the
    spread. Being a single logarithm, it moves about one learning rate per step:
    at the 1e-4 of ``configs/keypoint_mobilenetv2_mini.py`` it barely moves in a
    short run, which is why that config does not use it.

    Args:
        temperature: Softmax temperature on the similarities (the start, with
            ``learn_temperature``). The default 0.02 matches the window
            soft-argmax head's (SFNet's ``beta``, reused by GeoAware-SC on cosine
            scores), so training sharpens the distribution the head reads.
        distribution: ``'gaussian'`` or ``'bilinear'``.
        sigma: Standard deviation of the Gaussian target in target cells (about
            one cell keeps the 3 × 3 neighbourhood; a choice, not from a paper).
        regression_weight: Weight of the L2 term on the head's keypoints; 0
            switches it off.
        loss_weight: Multiplier of the whole loss.
        learn_temperature: Train the temperature (a parameter of the loss, so
            of the model that owns it); it is kept at or above 1e-3.

    Attributes:
        log_temperature: With ``learn_temperature``, the temperature's log (a
            parameter); :attr:`current_temperature` reads it.

    Raises:
        ValueError: On an unknown ``distribution``, ``temperature <= 0``,
            ``sigma <= 0`` or a negative weight.

    Shape:
        - similarity: ``(B, K, Ht, Wt)``
        - pred: :class:`~corrkit.models.base.KeypointPrediction` with kps
          ``(B, K, 2)``, or ``None``
        - target: ``(B, K, 2)`` normalised ``(x, y)``
        - valid: ``(B, K)`` bool
        - output: scalar

    Examples:
        >>> loss = KeypointCrossEntropyLoss(distribution='bilinear', temperature=1.0)
        >>> sim = torch.zeros(1, 1, 2, 2)  # a flat map: log(4) nats from any target
        >>> loss(sim, None, torch.tensor([[[0.3, -0.2]]]), torch.tensor([[True]]))
        tensor(1.3863)
    """

    def __init__(self, temperature: float = 0.02, distribution: str = 'gaussian',
                 sigma: float = 1.0, regression_weight: float = 0.0, loss_weight: float = 1.0,
                 learn_temperature: bool = False):
        super().__init__()
        name = type(self).__name__
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f'{name}.distribution must be one of {DISTRIBUTIONS}, got '
                             f'{distribution!r}')
        if not temperature > 0 or not sigma > 0:
            raise ValueError(f'{name} needs temperature > 0 and sigma > 0, got {temperature!r} '
                             f'and {sigma!r}')
        if regression_weight < 0 or loss_weight < 0:
            raise ValueError(f'{name} weights must be >= 0, got regression_weight='
                             f'{regression_weight!r} and loss_weight={loss_weight!r}')
        self.temperature = temperature
        self.learn_temperature = learn_temperature
        if learn_temperature:
            self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))
        self.distribution = distribution
        self.sigma = sigma
        self.regression_weight = regression_weight
        self.loss_weight = loss_weight

    @property
    def current_temperature(self) -> Tensor | float:
        """The temperature in use: ``temperature``, or with ``learn_temperature`` the
        learned one (a scalar tensor, at least 1e-3)."""
        if not self.learn_temperature:
            return self.temperature
        return self.log_temperature.clamp(min=math.log(MIN_TEMPERATURE)).exp()

    def target_distribution(self, target: Tensor, size: tuple[int, int]) -> Tensor:
        """The distribution over target cells the softmax is pulled towards.

        Args:
            target: True target keypoints, normalised ``(x, y)``.
            size: ``(Ht, Wt)`` of the target grid.

        Returns:
            Per keypoint, weights over the cells that sum to one.

        Shape:
            - target: ``(B, K, 2)``
            - output: ``(B, K, Ht, Wt)``
        """
        ht, wt = size
        point = normalized_to_pixel(target.detach().clamp(-1, 1), (ht, wt))  # in cells
        rows = torch.arange(ht, device=target.device, dtype=target.dtype)
        cols = torch.arange(wt, device=target.device, dtype=target.dtype)
        dx = cols - point[..., 0, None]  # (B, K, Wt)
        dy = rows - point[..., 1, None]  # (B, K, Ht)
        if self.distribution == 'bilinear':
            # the tent 1 - |d| is the bilinear weight of the two nearest cells per axis
            weights = (1 - dy.abs()).clamp(min=0)[..., :, None] * \
                (1 - dx.abs()).clamp(min=0)[..., None, :]
        else:
            weights = torch.exp(-(dy[..., :, None] ** 2 + dx[..., None, :] ** 2) /
                                (2 * self.sigma ** 2))
        return weights / weights.sum(dim=(-2, -1), keepdim=True)

    def forward(self, similarity: Tensor, pred: KeypointPrediction | None, target: Tensor,
                valid: Tensor) -> Tensor:
        """Return the weighted mean cross-entropy (plus regression) over valid keypoints."""
        target = target.to(similarity.dtype)
        # a learned temperature is a 0-dim tensor: dividing keeps the similarity's dtype
        log_probs = torch.log_softmax(similarity.flatten(-2) / self.current_temperature, dim=-1)
        weights = self.target_distribution(target, similarity.shape[-2:]).flatten(-2)
        # cells without target weight drop out even where a score is -inf (masked
        # out by the caller): 0 * -inf would be NaN
        per_kp = -torch.where(weights > 0, weights * log_probs, 0.0).sum(dim=-1)
        if self.regression_weight > 0 and pred is not None:
            per_kp = per_kp + self.regression_weight * (pred.kps - target).pow(2).sum(dim=-1)
        valid = valid.to(torch.bool)
        count = valid.sum()
        if count == 0:
            return similarity.sum() * 0.0
        # where, not a product: a masked keypoint's term may be inf or NaN
        per_kp = torch.where(valid, per_kp, torch.zeros_like(per_kp))
        return self.loss_weight * per_kp.sum() / count

    def extra_repr(self) -> str:
        learned = ' (learned)' if self.learn_temperature else ''
        return (f'temperature={self.temperature}{learned}, distribution={self.distribution!r}, '
                f'sigma={self.sigma}, regression_weight={self.regression_weight}')
