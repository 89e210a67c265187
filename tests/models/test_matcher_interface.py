"""Encode once, match many: the Matcher interface, its checker, its values, and how many
images each command sends through the backbone."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from corrkit.apis import init_matcher, match_pair
from corrkit.apis.batch import ImagePair, match_pairs
from corrkit.errors import ContractError
from corrkit.models import CorrelationMatcher, ImageFeatures, ImageFrame
from corrkit.registry import MODELS
from corrkit.structures import PairDataSample
from corrkit.testing import check_matcher

from ..conftest import TINY_MATCHER

BACKBONE = dict(type='TimmHypercolumnBackbone', model_name='test_resnet', taps=(2, 3),
                pretrained=False)
KEYPOINT = dict(type='KeypointMatcher', backbone=BACKBONE, input_size=48,
                head=dict(type='SoftArgmaxKeypointHead'))


def build(cfg: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS.build(cfg).eval()


@pytest.mark.parametrize('cfg', [
    TINY_MATCHER,
    {**TINY_MATCHER, 'neck': dict(type='IdentityNeck')},
    KEYPOINT,
    {**KEYPOINT, 'pose_alignment': True, 'head': dict(type='WindowSoftArgmaxHead', window=3)},
], ids=['correlation', 'correlation+neck', 'keypoint', 'keypoint+pose'])
def test_both_matcher_families_pass_the_checker(cfg):
    check_matcher(build(cfg))


class BatchNormalisedMatcher(CorrelationMatcher):
    """Breaks the contract: an image's maps depend on the images encoded with it."""

    def feature_maps(self, images):
        return [m - m.mean(0, keepdim=True) for m in super().feature_maps(images)]


class OverconfidentMatcher(CorrelationMatcher):
    def match_points(self, src, points, trg, **kwargs):
        out = super().match_points(src, points, trg, **kwargs)
        return out._replace(confidence=out.confidence + 1)


class FirstTargetMatcher(CorrelationMatcher):
    """Breaks the contract: every source is matched with the first target."""

    def match_points(self, src, points, trg, **kwargs):
        return super().match_points(src, points, trg[[0] * len(trg)], **kwargs)


@pytest.mark.parametrize('cls, message', [
    (BatchNormalisedMatcher, 'depends on the images encoded with it'),
    (OverconfidentMatcher, r'confidence must lie in \[0, 1\]'),
    (FirstTargetMatcher, 'pair i of a batch must match source i with target i'),
])
def test_the_checker_names_what_broke(cls, message):
    torch.manual_seed(0)
    model = cls(**{k: v for k, v in TINY_MATCHER.items() if k != 'type'}).eval()
    with pytest.raises(ContractError, match=f'{cls.__name__} .*Matcher contract: .*{message}'):
        check_matcher(model)
    with pytest.raises(ContractError, match='is not a corrkit.models.base.Matcher'):
        check_matcher(torch.nn.Linear(2, 2))


def test_frames_map_points_through_resize_and_padding():
    frame = ImageFrame((100, 200), (60, 60), padding=(0, 10, 0, 10))  # letterboxed 2:1 image
    corners = torch.tensor([[-0.5, -0.5], [199.5, 99.5]])  # the image's outer pixel edges
    torch.testing.assert_close(frame.to_input(corners), torch.tensor([[-0.5, 9.5],
                                                                      [59.5, 49.5]]))
    points = torch.rand(7, 2) * torch.tensor([199.0, 99.0])
    torch.testing.assert_close(frame.from_normalized(frame.to_normalized(points)), points)
    identity = ImageFrame.identity((32, 32))
    assert identity.is_identity and identity.to_input(points) is points
    with pytest.raises(ValueError, match='positive sizes'):
        ImageFrame((10, 10), (4, 4), padding=(2, 0, 2, 0))


def test_features_index_concatenate_and_check_their_frames():
    maps = (torch.randn(3, 4, 5, 6), torch.randn(3, 2, 3, 3))
    frames = [ImageFrame((10 + i, 20), (40, 48)) for i in range(3)]
    feats = ImageFeatures(maps, frames, mirrored=tuple(m.flip(-1) for m in maps))
    picked = feats[[2, 0, 2]]
    assert len(picked) == 3 and picked.frames == (frames[2], frames[0], frames[2])
    assert torch.equal(picked.maps[1][1], maps[1][0]) and picked.mirrored is not None
    assert len(feats[1]) == 1 and len(feats[-1]) == 1 and feats[-1].frames == (frames[2],)
    joined = ImageFeatures.cat([feats[0], feats[1:].without_mirrored()])
    assert torch.equal(joined.maps[0], maps[0]) and joined.mirrored is None
    points = torch.rand(3, 4, 2) * 9
    torch.testing.assert_close(feats.from_normalized(feats.to_normalized(points)), points)
    with pytest.raises(ValueError, match='hold \\[3\\] images but 2 frames'):
        ImageFeatures(maps, frames[:2])
    with pytest.raises(ValueError, match=r'\(N, K, 2\) for N = 3'):
        feats.to_normalized(torch.rand(2, 4, 2))


def test_encode_checks_frames_against_the_images():
    model = build(TINY_MATCHER)
    with pytest.raises(ValueError, match='2 images but 1 frames'):
        model.encode(torch.randn(2, 3, 32, 32), [ImageFrame((5, 5), (32, 32))])
    with pytest.raises(ValueError, match=r'frame 0 is for an input of \(64, 64\)'):
        model.encode(torch.randn(1, 3, 32, 32), [ImageFrame((5, 5), (64, 64))])
    with pytest.raises(ValueError, match=r'\(N, 3, H, W\)'):
        model.encode(torch.randn(1, 2, 3, 32, 32))


@torch.no_grad()
def test_modes_and_match_points_share_the_two_stages():
    """predict mode is match_points on encode_pairs; tensor mode is dense_flow on them."""
    for cfg in (TINY_MATCHER, KEYPOINT):
        model = build(cfg)
        size = model.input_size[0]
        inputs = torch.randn(2, 2, 3, size, size)
        kps = torch.rand(2, 4, 2) * (size - 1)
        samples = [PairDataSample(src_kps=k) for k in kps]
        preds = model(inputs, samples, mode='predict')
        src, trg = model.encode_pairs(inputs)
        out = model.match_points(src, kps, trg)
        torch.testing.assert_close(torch.stack([p.pred_trg_kps for p in preds]), out.trg_kps)
        torch.testing.assert_close(model(inputs), model.dense_flow(src, trg))


@torch.no_grad()
def test_grid_scores_are_each_cells_scores():
    """match_pair's scores of a cell are the cell's own probabilities (tau below a cell)."""
    model = build(TINY_MATCHER)
    rng = np.random.default_rng(0)
    src, trg = (rng.integers(0, 255, (40, 50, 3), dtype=np.uint8) for _ in range(2))
    result = match_pair(model, src, trg, [[3.0, 4.0]], scores=True)
    image = torch.stack([torch.from_numpy(np.asarray(Image.fromarray(a).resize((32, 32),
                                                                               Image.BILINEAR),
                                                     dtype=np.float32)).permute(2, 0, 1)
                         for a in (src, trg)])
    inputs = model.data_preprocessor(dict(inputs=image[None]))['inputs']
    probs = model.correspond(*model.encode_pairs(inputs)).probs[0]
    torch.testing.assert_close(result.scores, probs, atol=1e-5, rtol=1e-4)
    cells, targets = result.grid_matches()
    assert cells.shape == targets.shape == (64, 2)
    # cell (0, 0) is the frame's pixel (0, 0), carried to the 50 x 40 image's pixels
    assert cells[0].tolist() == pytest.approx([0.5 * 50 / 32 - 0.5, 0.5 * 40 / 32 - 0.5])


class BackboneImages:
    """Counts the backbone's calls and the images it is sent (a forward hook)."""

    def __init__(self, model):
        self.calls, self.images = 0, 0
        model.backbone.register_forward_hook(self)

    def __call__(self, module, args, output):
        self.calls += 1
        self.images += args[0].shape[0]


def photo(path, seed, size=(70, 50)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def test_match_with_the_viewer_encodes_and_decodes_each_image_once(tmp_path, monkeypatch):
    from corrkit.apis import demo
    from corrkit.cli import main
    counters, opened = [], []

    def counted(*args, **kwargs):
        model = init_matcher(*args, **kwargs)
        counters.append(BackboneImages(model))
        return model

    real_open = Image.open

    def counting_open(fp, *args, **kwargs):
        opened.append(str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(demo, 'init_matcher', counted)
    monkeypatch.setattr(Image, 'open', counting_open)
    src, trg = photo(tmp_path / 'a.png', 0), photo(tmp_path / 'b.png', 1)
    assert main(['match', str(src), str(trg), '--model', 'transformatcher_tiny', '--html',
                 '--out-dir', str(tmp_path / 'out')]) == 0
    assert (counters[0].calls, counters[0].images) == (1, 2)  # was 2 calls, 4 images
    assert sorted(opened) == [str(src), str(trg)]  # each file decoded once
    assert (tmp_path / 'out' / 'matches.html').is_file()


@pytest.mark.parametrize('cfg, images', [(TINY_MATCHER, 2), (KEYPOINT, 2),
                                         ({**KEYPOINT, 'pose_alignment': True}, 3)],
                         ids=['correlation', 'keypoint', 'keypoint+pose'])
def test_match_pair_with_scores_encodes_each_image_once(cfg, images):
    model = build(cfg)
    counter = BackboneImages(model)
    rng = np.random.default_rng(0)
    src, trg = (rng.integers(0, 255, (40, 50, 3), dtype=np.uint8) for _ in range(2))
    result = match_pair(model, src, trg, [[1.0, 2.0], [30.0, 20.0]], scores=True)
    assert result.scores is not None and result.trg_kps.shape == (2, 2)
    assert counter.images == images  # a mirrored source counts once more


def test_match_pairs_reuses_an_images_features_within_a_run(tmp_path):
    model = build(TINY_MATCHER)
    counter = BackboneImages(model)
    a, b, c = (photo(tmp_path / f'{n}.png', i) for i, n in enumerate('abc'))
    pairs = [ImagePair('ab', a, b), ImagePair('ac', a, c), ImagePair('cb', c, b),
             ImagePair('aa', a, a)]
    report = match_pairs(model, pairs, tmp_path / 'out', progress=False)
    assert report.matched == ['ab', 'ac', 'cb', 'aa'] and not report.failed
    assert counter.images == 3  # three images, four pairs: was 8
    # the same numbers as matching each pair on its own
    got = json.loads((tmp_path / 'out' / 'cb.json').read_text())
    alone = match_pair(model, str(c), str(b), np.asarray(got['src_kps']))
    np.testing.assert_allclose(got['trg_kps'], alone.trg_kps.numpy(), atol=1e-4)


def test_match_pairs_rejects_points_outside_the_image(tmp_path):
    model = build(TINY_MATCHER)
    a, b = photo(tmp_path / 'a.png', 0), photo(tmp_path / 'b.png', 1)
    kps = tmp_path / 'kps.csv'
    kps.write_text('x,y\n10,10\n70,5\n')  # the image is 70 x 50: x = 70 is outside
    report = match_pairs(model, [ImagePair('ab', a, b, kps)], tmp_path / 'out', progress=False)
    assert "point 2, [70.0, 5.0], lies outside the 70 x 50" in report.failed['ab']
    assert not (tmp_path / 'out' / 'ab.json').exists()
