"""The shipped necks and ``check_neck``: behaviour beyond the registry-driven contract tests."""
import pytest
import torch
import torch.nn.functional as F

from corrkit.errors import ContractError
from corrkit.models.base import Neck
from corrkit.models.necks import AggregationNeck, IdentityNeck, UpsampleNeck
from corrkit.ops import resize_features
from corrkit.testing import check_neck


def test_aggregation_starts_as_the_weighted_mean_of_projected_maps():
    torch.manual_seed(0)
    neck = AggregationNeck(in_channels=[8, 16], in_strides=[8, 16], out_channels=16,
                           num_blocks=2, norm_groups=2, normalize_inputs=False)
    torch.testing.assert_close(neck.layer_weights(), torch.full((2,), 0.5))
    feats = [torch.randn(2, 8, 6, 5), torch.randn(2, 16, 3, 3)]
    expected = sum(0.5 * resize_features(proj(f), (6, 5))
                   for proj, f in zip(neck.projections, feats))
    torch.testing.assert_close(neck(feats)[0], expected)  # zero last convs: identity blocks
    neck.layer_logits.data = torch.tensor([0.0, 50.0])  # all weight on the coarse map
    torch.testing.assert_close(neck(feats)[0], resize_features(neck.projections[1](feats[1]),
                                                                (6, 5)), atol=1e-5, rtol=0)


def test_normalized_inputs_weigh_the_same_whatever_their_scale():
    torch.manual_seed(0)
    neck = AggregationNeck(in_channels=[8, 16], in_strides=[8, 16], out_channels=16,
                           num_blocks=1, norm_groups=2)
    feats = [torch.randn(2, 8, 6, 5), torch.randn(2, 16, 3, 3)]
    torch.testing.assert_close(neck([feats[0] * 100, feats[1] * 0.01])[0], neck(feats)[0])


def test_concatenation_start_averages_the_per_map_cosines():
    """out_channels=None: the untrained neck's cosine between two cells is the mean of the
    input maps' cosines, what a matcher computes from the maps without a neck."""
    torch.manual_seed(0)
    neck = AggregationNeck(in_channels=[8, 16, 4], in_strides=[8, 8, 8], out_channels=None,
                           num_blocks=2, hidden_channels=8, norm_groups=4)
    assert neck.out_channels == [28] and neck.projections[1].weight.shape == (28, 16, 1, 1)
    feats = [torch.randn(1, c, 4, 5) * s for c, s in zip([8, 16, 4], [1.0, 30.0, 0.1])]

    def cosines(f):
        f = F.normalize(f.flatten(2), dim=1)
        return f.mT @ f

    want = sum(cosines(f) for f in feats) / 3
    torch.testing.assert_close(cosines(neck(feats)[0]), want, atol=1e-5, rtol=0)
    # learned layer weights reweigh the maps' cosines by w_j² / sum(w²)
    neck.layer_logits.data = torch.tensor([0.0, 0.0, 50.0])
    torch.testing.assert_close(cosines(neck(feats)[0]), cosines(feats[2]), atol=1e-5, rtol=0)


def test_untrained_aggregation_keeps_cosine_similarities_of_one_map():
    """Orthogonal projections to a wider space keep inner products: zero-shot matching of
    a single map is unchanged at the start."""
    torch.manual_seed(0)
    neck = AggregationNeck(in_channels=[16], in_strides=[14], out_channels=32, norm_groups=2)
    feats = torch.randn(1, 16, 4, 4)
    before = F.normalize(feats.flatten(2), dim=1)
    after = F.normalize(neck([feats])[0].flatten(2), dim=1)
    torch.testing.assert_close(after.mT @ after, before.mT @ before, atol=1e-5, rtol=0)


def test_upsampling_divides_strides_and_keeps_cell_centres():
    neck = UpsampleNeck(in_channels=[2, 3], in_strides=[8, 16], factor=2)
    assert neck.strides == [4, 8] and neck.out_channels == [2, 3]
    feats = [torch.randn(1, 2, 3, 4), torch.randn(1, 3, 2, 2)]
    out = neck(feats)
    assert [tuple(f.shape[-2:]) for f in out] == neck.output_sizes([(3, 4), (2, 2)]) == [
        (6, 8), (4, 4)]
    # align_corners=True: the corner cells are the input's corner cells
    torch.testing.assert_close(out[0][..., 0, 0], feats[0][..., 0, 0])
    torch.testing.assert_close(out[0][..., -1, -1], feats[0][..., -1, -1])
    agg = AggregationNeck(in_channels=[2, 3], in_strides=[8, 16], out_channels=4,
                          num_blocks=0, upsample=4)
    assert agg.strides == [2] and agg.output_sizes([(3, 4), (2, 2)]) == [(12, 16)]


@pytest.mark.parametrize('build, message', [
    (lambda: UpsampleNeck([4], [14], factor=4), r'UpsampleNeck cannot upsample by 4.*\[14\]'),
    (lambda: UpsampleNeck([4], [16], factor=1.5), r'integer factor >= 1, got 1.5'),
    (lambda: AggregationNeck([4], [16], upsample=0), r'AggregationNeck upsamples .* got 0'),
    (lambda: AggregationNeck([4], [16], out_channels=16, norm_groups=8),
     r'AggregationNeck.norm_groups=8 must divide .* 4'),
    (lambda: IdentityNeck([4, 8], [16]), r'IdentityNeck needs one positive .*=\[4, 8\]'),
])
def test_bad_arguments_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_a_neck_refuses_another_number_of_maps():
    neck = AggregationNeck(in_channels=[4, 4], in_strides=[8, 8], out_channels=8, norm_groups=2)
    with pytest.raises(ValueError, match='AggregationNeck expected 2 input maps'):
        neck([torch.randn(1, 4, 3, 3)])


class _ForgetsStrides(UpsampleNeck):
    """Upsamples but declares the input strides."""

    def __init__(self, in_channels=(4,), in_strides=(8,)):
        super().__init__(in_channels, in_strides, factor=2)
        self.strides = list(self.in_strides)


class _WrongChannels(IdentityNeck):
    def forward(self, feats):
        return [f[:, :1] for f in feats]


class _TooFewSizes(Neck):
    def __init__(self, in_channels=(4, 4), in_strides=(8, 8)):
        super().__init__()
        self.in_channels, self.in_strides = list(in_channels), list(in_strides)
        self.out_channels, self.strides = [4], [8]

    def forward(self, feats):
        return [feats[0]]


@pytest.mark.parametrize('neck, message', [
    (_ForgetsStrides(), r'_ForgetsStrides .* map 0 is \(12, 10\) cells .* stride 8 means \(6, 5\)'),
    (_WrongChannels([4], [8]), r'_WrongChannels .* breaks the Neck contract: expected shape'),
    (_TooFewSizes(), r'_TooFewSizes .* must override Neck.output_sizes'),
])
def test_check_neck_names_the_class_and_what_broke(neck, message):
    with pytest.raises((ContractError, NotImplementedError), match=message):
        check_neck(neck)


def test_check_neck_takes_sizes_and_injected_values():
    neck = IdentityNeck(in_channels=[4], in_strides=[14])
    check_neck(neck, sizes=[(5, 7)], dtypes=(torch.float32,))
    with pytest.raises(ContractError, match='is not a corrkit.models.base.Neck'):
        check_neck(torch.nn.Identity(), in_channels=[4], in_strides=[8])


def test_blocks_refine_at_the_upsampled_resolution():
    torch.manual_seed(0)
    neck = AggregationNeck(in_channels=[4, 4], in_strides=[8, 16], out_channels=8,
                           num_blocks=1, norm_groups=2, upsample=2, normalize_inputs=False)
    torch.nn.init.normal_(neck.blocks[0].body[-1].weight)  # a block that is not the identity
    feats = [torch.randn(1, 4, 3, 4), torch.randn(1, 4, 2, 2)]
    mixed = sum(0.5 * resize_features(proj(f), (3, 4)) for proj, f in zip(neck.projections, feats))
    torch.testing.assert_close(neck(feats)[0], neck.blocks(resize_features(mixed, (6, 8))))
