import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from corrkit.apis import match_pair
from corrkit.models import Matcher
from corrkit.models.base import (Backbone, KeypointHead, KeypointPrediction, Neck,
                                 SimilarityLoss)
from corrkit.models.correlation.multi_channel import MultiChannelCorrelation
from corrkit.ops import normalized_grid, normalized_to_pixel, pixel_to_normalized
from corrkit.registry import MODELS
from corrkit.errors import ContractError

from ..conftest import random_samples

SIZE = 64  # test_resnet taps (2, 3): an 8 x 8 and a 4 x 4 grid
BACKBONE = dict(type='TimmHypercolumnBackbone', model_name='test_resnet', taps=(2, 3),
                pretrained=False)


class ArgmaxHead(KeypointHead):
    """Nearest neighbour: the centre of the best target cell; confidence = its score."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[int, ...]] = []

    def forward(self, similarity):
        self.seen.append(tuple(similarity.shape))
        b, k, h, w = similarity.shape
        best = similarity.flatten(2).argmax(-1)
        grid = normalized_grid(h, w, device=similarity.device, dtype=similarity.dtype)
        kps = grid.flatten(1).T[best]
        return KeypointPrediction(kps, similarity.flatten(2).amax(-1).clamp(0, 1))


class CellCrossEntropy(SimilarityLoss):
    """Cross-entropy of the softmax over target cells against the true target's nearest cell."""

    def forward(self, similarity, pred, target, valid):
        b, k, h, w = similarity.shape
        col = ((target[..., 0] + 1) / 2 * (w - 1)).round().long().clamp(0, w - 1)
        row = ((target[..., 1] + 1) / 2 * (h - 1)).round().long().clamp(0, h - 1)
        ce = F.cross_entropy((similarity / 0.1).flatten(2).flatten(0, 1), (row * w + col).flatten(),
                             reduction='none')
        return (ce * valid.flatten()).sum() / valid.sum().clamp(min=1)


class ConvNeck(Neck):
    """A 1 x 1 convolution per map (a trainable adapter)."""

    def __init__(self, in_channels=(1,), out_dims=8):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(c, out_dims, 1) for c in in_channels)
        self.out_channels = [out_dims] * len(in_channels)
        self.strides = [1] * len(in_channels)

    def forward(self, feats):
        return [conv(f) for conv, f in zip(self.convs, feats)]


def build(**kwargs):
    torch.manual_seed(0)
    cfg = dict(type='KeypointMatcher', backbone=BACKBONE, head=ArgmaxHead(),
               loss=CellCrossEntropy(), input_size=SIZE)
    return MODELS.build({**cfg, **kwargs})


def samples(n_kps=(3, 5), size=SIZE):
    return random_samples(n_kps, size)


def test_modes():
    model = build(neck=dict(type=ConvNeck))
    inputs = torch.randn(2, 2, 3, SIZE, SIZE)
    flow = model(inputs, mode='tensor')
    assert flow.shape == (2, 2, 8, 8)  # the finest source grid

    losses = model(inputs, samples(), mode='loss')
    assert set(losses) == {'loss_kps'} and torch.isfinite(losses['loss_kps'])
    losses['loss_kps'].backward()
    assert model.neck.convs[0].weight.grad.abs().sum() > 0
    assert next(model.backbone.parameters()).grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        preds = model(inputs, samples(), mode='predict')
    assert [p.pred_trg_kps.shape for p in preds] == [(3, 2), (5, 2)]
    assert [p.pred_confidence.shape for p in preds] == [(3,), (5,)]
    # pixels of the frame: an argmax lands on a cell centre, 0 .. SIZE - 1
    assert all(((p.pred_trg_kps >= 0) & (p.pred_trg_kps <= SIZE - 1)).all() for p in preds)
    assert max(float(p.pred_trg_kps.max()) for p in preds) > 2  # not normalised coordinates


def pair_maps(model, inputs):
    """The source and the target maps of image pairs (``encode_pairs``)."""
    return [list(features.maps) for features in model.encode_pairs(inputs)]


def test_similarity_is_per_keypoint_never_4d():
    model = build()
    src, trg = pair_maps(model, torch.randn(2, 2, 3, SIZE, SIZE))
    assert [tuple(f.shape) for f in src] == [(2, c, *hw) for c, hw in zip(
        model.backbone.out_channels, [(8, 8), (4, 4)])]
    kps = torch.rand(2, 5, 2) * 2 - 1
    sim = model.similarity(src, kps, trg)
    assert sim.shape == (2, 5, 8, 8)  # (B, K, Ht, Wt): K * Ht * Wt scores per pair
    assert sim.abs().max() <= 1 + 1e-5


def test_several_maps_give_the_zero_shot_mean_correlation():
    model = build(clamp_negative=True)
    src, trg = pair_maps(model, torch.randn(1, 2, 3, SIZE, SIZE))
    baseline = MultiChannelCorrelation(model.backbone.out_channels)(src, trg).mean(1)
    cells = normalized_grid(8, 8).flatten(1).T[None]  # every source cell centre, row-major
    sim = model.similarity(src, cells, trg)
    torch.testing.assert_close(sim, baseline.flatten(1, 2), atol=1e-5, rtol=1e-4)


class FixedFeatureBackbone(Backbone):
    """The same random map for every image: any pair is feature-identical."""

    def __init__(self, channels=256, stride=8, grid=8):
        super().__init__()
        self.register_buffer('map', torch.randn(1, channels, grid, grid))
        self.out_channels, self.strides = [channels], [stride]

    def forward(self, images):
        return [self.map.expand(len(images), -1, -1, -1)]


def test_a_keypoint_on_an_identical_pair_maps_to_itself():
    model = build().eval()
    image = torch.randn(1, 1, 3, SIZE, SIZE).expand(1, 2, -1, -1, -1)
    cells = normalized_grid(8, 8).flatten(1).T[None]
    with torch.no_grad():
        src, trg = pair_maps(model, image)
        pred = model.match_keypoints(src, cells, trg)
    torch.testing.assert_close(pred.kps, cells)  # cell centres: exactly themselves
    torch.testing.assert_close(pred.confidence, torch.ones(1, 64), atol=1e-4, rtol=0)
    # sub-pixel keypoints land on one of the 4 cells around them; random Gaussian
    # features are nearly orthogonal, so the best cell is the one weighed most
    model = build(backbone=FixedFeatureBackbone()).eval()
    torch.manual_seed(1)
    kps = torch.rand(1, 50, 2) * 2 - 1
    with torch.no_grad():
        src, trg = pair_maps(model, torch.randn(1, 2, 3, SIZE, SIZE))
        pred = model.match_keypoints(src, kps, trg)
    cell = (SIZE - 1) / 7  # pixels between cell centres: 8 cells span the frame's 0 .. 63
    error = normalized_to_pixel(pred.kps, (SIZE, SIZE)) - normalized_to_pixel(kps, (SIZE, SIZE))
    assert error.abs().max() < cell
    nearest = ((kps + 1) / 2 * 7).round() / 7 * 2 - 1
    assert (pred.kps - nearest).abs().amax(-1).lt(1e-6).float().mean() > 0.8


def test_dense_flow_in_chunks_equals_one_chunk():
    model = build().eval()
    inputs = torch.randn(2, 2, 3, SIZE, SIZE)
    with torch.no_grad():
        src, trg = model.encode_pairs(inputs)
        whole = model.dense_flow(src, trg, chunk=10_000)
        model.head.seen.clear()
        chunked = model.dense_flow(src, trg, chunk=7)
        assert max(s[1] for s in model.head.seen) == 7  # memory: B * chunk * Ht * Wt
        assert model.head.seen[0] == (2, 7, 8, 8) and len(model.head.seen) == 10  # ceil(64 / 7)
        finer = model.dense_flow(src, trg, grid=(5, 3), chunk=4)
    torch.testing.assert_close(chunked, whole)
    assert finer.shape == (2, 2, 5, 3)
    assert whole.abs().max() > 0


def test_contract_violations_name_the_class():
    class FlatHead(KeypointHead):
        def forward(self, similarity):
            return KeypointPrediction(similarity.flatten(2)[..., :3], similarity[:, :, 0, 0])

    class DroppingNeck(ConvNeck):
        def forward(self, feats):
            return super().forward(feats)[:1]

    model = build(head=FlatHead())
    with pytest.raises(ContractError, match=r'FlatHead .* KeypointHead contract'):
        model(torch.randn(1, 2, 3, SIZE, SIZE))
    model = build(neck=dict(type=DroppingNeck))
    with pytest.raises(ContractError, match=r'DroppingNeck .* Neck contract.* 2 feature maps'):
        model(torch.randn(1, 2, 3, SIZE, SIZE))
    with pytest.raises(TypeError, match='used as the KeypointHead'):
        build(head=nn.Identity())
    with pytest.raises(ValueError, match='data_samples'):
        build()(torch.randn(1, 2, 3, SIZE, SIZE), mode='loss')


def test_match_pair_returns_pixels_and_confidences():
    model = build().eval()
    assert isinstance(model, Matcher)
    rng = np.random.default_rng(0)
    src = rng.integers(0, 255, (48, 80, 3), dtype=np.uint8)
    trg = rng.integers(0, 255, (100, 60, 3), dtype=np.uint8)
    kps = [[0, 0], [79, 47], [40.5, 20.25]]
    result = match_pair(model, src, trg, kps)
    torch.testing.assert_close(result.src_kps, torch.tensor(kps, dtype=torch.float32))
    assert result.trg_kps.shape == (3, 2) and result.confidence.shape == (3,)
    assert ((result.confidence >= 0) & (result.confidence <= 1)).all()
    assert (result.trg_kps[:, 0] >= -0.5).all() and (result.trg_kps[:, 0] <= 59.5).all()
    assert (result.trg_kps[:, 1] >= -0.5).all() and (result.trg_kps[:, 1] <= 99.5).all()
    assert result.flow.shape == (2, 8, 8)
    dense = match_pair(model, src, src)  # default points: the flow grid's cells, to themselves
    assert dense.src_kps.shape == (64, 2)
    torch.testing.assert_close(dense.trg_kps, dense.src_kps, atol=1e-4, rtol=0)
    torch.testing.assert_close(dense.flow, torch.zeros(2, 8, 8), atol=1e-5, rtol=0)


def test_match_points_agrees_with_predict():
    model = build().eval()
    inputs = torch.randn(1, 2, 3, SIZE, SIZE)
    data = samples((4,))
    with torch.no_grad():
        pred = model(inputs, data, mode='predict')[0]
        src, trg = model.encode_pairs(inputs)
        out = model.match_points(src, data[0].src_kps[None], trg)
    torch.testing.assert_close(out.trg_kps[0], pred.pred_trg_kps)
    torch.testing.assert_close(out.confidence[0], pred.pred_confidence)
    back = pixel_to_normalized(out.trg_kps, (SIZE, SIZE))
    assert back.abs().max() <= 1 + 1e-6


def test_registered_neck_head_and_losses_train_end_to_end():
    model = build(neck=dict(type='AggregationNeck', out_channels=32, num_blocks=1),
                  head=dict(type='WindowSoftArgmaxHead', window=3),
                  loss=dict(type='KeypointCrossEntropyLoss'))
    inputs = torch.randn(2, 2, 3, SIZE, SIZE)
    assert len(model.neck.out_channels) == 1  # one aggregated map: no mean over maps
    assert model(inputs, mode='tensor').shape == (2, 2, *model.feature_sizes(SIZE, SIZE)[0])
    loss = model(inputs, samples(), mode='loss')['loss_kps']
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    grads = [p.grad for p in model.neck.parameters()]
    # every neck parameter is in the graph (the blocks' inner ones get zero gradient
    # at initialisation, by design: their last convolution starts at zero)
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    assert next(model.backbone.parameters()).grad.abs().sum() > 0
    # a keypoint loss (not a SimilarityLoss) reads the head's keypoints
    model = build(head=dict(type='WindowSoftArgmaxHead', window=3),
                  loss=dict(type='KeypointL2Loss'))
    loss = model(inputs, samples(), mode='loss')['loss_kps']
    loss.backward()
    assert next(model.backbone.parameters()).grad.abs().sum() > 0


def test_identity_neck_and_nearest_neighbour_head_change_nothing():
    inputs = torch.randn(1, 2, 3, SIZE, SIZE)
    data = samples((6,))
    with torch.no_grad():
        plain = build(head=dict(type='NearestNeighbourHead')).eval()(inputs, data, mode='predict')
        plain = plain[0].pred_trg_kps.clone()
        necked = build(head=dict(type='NearestNeighbourHead'), neck=dict(type='IdentityNeck'))
        again = necked.eval()(inputs, data, mode='predict')[0].pred_trg_kps
    torch.testing.assert_close(again, plain)
