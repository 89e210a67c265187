"""check_keypoint_head catches each way a keypoint head can break its contract."""
import pytest
import torch
from torch import nn

from corrkit.errors import ContractError
from corrkit.models.base import KeypointPrediction
from corrkit.models.keypoint_heads import NearestNeighbourHead, WindowSoftArgmaxHead
from corrkit.testing import check_keypoint_head


class SwappedHead(WindowSoftArgmaxHead):
    def forward(self, similarity):  # (y, x) instead of (x, y)
        pred = super().forward(similarity)
        return pred._replace(kps=pred.kps.flip(-1))


class PixelHead(WindowSoftArgmaxHead):
    def forward(self, similarity):  # cells, not normalised coordinates
        pred = super().forward(similarity)
        return pred._replace(kps=(pred.kps + 1) * 3)


class RawScoreConfidenceHead(WindowSoftArgmaxHead):
    def forward(self, similarity):  # a cosine is no confidence: it can be negative
        pred = super().forward(similarity)
        return pred._replace(confidence=similarity.flatten(-2).amin(-1))


class DetachedHead(WindowSoftArgmaxHead):
    def forward(self, similarity):  # claims to be differentiable (the default) but is not
        pred = super().forward(similarity)
        return pred._replace(kps=pred.kps.detach())


class Float32Head(WindowSoftArgmaxHead):
    def forward(self, similarity):
        return super().forward(similarity.float())


class TupleHead(WindowSoftArgmaxHead):
    def forward(self, similarity):
        return tuple(super().forward(similarity))


class CalibratedHead(NearestNeighbourHead):
    """A non-differentiable head with a parameter: the checker wants its gradient."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, similarity):
        pred = super().forward(similarity)
        return KeypointPrediction(pred.kps, (pred.confidence * self.scale).clamp(0, 1))


def test_correct_heads_pass_including_a_declared_non_differentiable_one():
    check_keypoint_head(WindowSoftArgmaxHead(window=3))
    check_keypoint_head(NearestNeighbourHead())
    check_keypoint_head(CalibratedHead())


@pytest.mark.parametrize('head, message', [
    (SwappedHead(window=3), 'wrong side in x and y'),
    (PixelHead(window=3), 'outside the target frame'),
    (RawScoreConfidenceHead(window=3), r'not inside \[0, 1\]'),
    (DetachedHead(window=3), 'differentiable = False'),
    (Float32Head(window=3), 'does not follow the input dtype'),
    (TupleHead(window=3), 'expected a KeypointPrediction'),
])
def test_check_keypoint_head_names_the_class_and_what_broke(head, message):
    with pytest.raises(ContractError, match=f'{type(head).__name__}.*{message}'):
        check_keypoint_head(head)


def test_a_module_of_another_role_is_refused():
    with pytest.raises(ContractError, match='not a corrkit.models.base.KeypointHead'):
        check_keypoint_head(nn.Identity())
