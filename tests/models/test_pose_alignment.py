"""Test-time pose alignment of the keypoint matcher, its score and the mirrored-source probe."""
import pytest
import torch
from torchvision import tv_tensors

from corrkit.datasets.transforms import PairMirrorSource
from corrkit.datasets.transforms._pair import as_keypoints
from corrkit.models import KeypointMatcher
from corrkit.models.base import KeypointHead, KeypointPrediction
from corrkit.ops import mutual_nn_agreement, normalized_grid, target_to_flow
from corrkit.registry import MODELS
from corrkit.structures import PairDataSample

SIZE = 64  # test_resnet taps (2, 3): an 8 x 8 and a 4 x 4 grid
CELL = (SIZE - 1) / 7  # pixels between neighbouring cell centres of the 8 x 8 grid
BACKBONE = dict(type='TimmHypercolumnBackbone', model_name='test_resnet', taps=(2, 3),
                pretrained=False)


class ArgmaxHead(KeypointHead):
    """Nearest neighbour: the centre of the best target cell; confidence = its score."""

    def forward(self, similarity):
        b, k, h, w = similarity.shape
        best = similarity.flatten(2).argmax(-1)
        grid = normalized_grid(h, w, device=similarity.device, dtype=similarity.dtype)
        return KeypointPrediction(grid.flatten(1).T[best],
                                  similarity.flatten(2).amax(-1).clamp(0, 1))


def build(pose_alignment: bool) -> KeypointMatcher:
    torch.manual_seed(0)  # random but fixed weights: features that are not mirror-symmetric
    model = MODELS.build(dict(type='KeypointMatcher', backbone=BACKBONE, head=ArgmaxHead(),
                              input_size=SIZE, pose_alignment=pose_alignment))
    return model.eval()


def pairs() -> torch.Tensor:
    """Pair 0: the target is the source mirrored; pair 1: source and target identical."""
    torch.manual_seed(1)
    a, b = torch.randn(2, 3, SIZE, SIZE)
    return torch.stack([torch.stack([a, a.flip(-1)]), torch.stack([b, b])])


def samples(kps: torch.Tensor) -> list[PairDataSample]:
    return [PairDataSample(src_kps=k.clone(), trg_kps=k.clone(),
                           kps_valid=torch.ones(len(k), dtype=torch.bool)) for k in kps]


def direct_agreement(src, trg, radius):
    """The definition, on the whole similarity matrix at once."""
    src = src / (src.norm(dim=1, keepdim=True) + 1e-5)
    trg = trg / (trg.norm(dim=1, keepdim=True) + 1e-5)
    sim = torch.einsum('bcn,bcm->bnm', src.flatten(2), trg.flatten(2))
    score, fwd = sim.max(2)
    back = sim.argmax(1)
    ws = src.shape[-1]
    out = []
    for i in range(src.shape[0]):
        total = 0.0
        for s in range(sim.shape[1]):
            r = int(back[i, fwd[i, s]])
            if max(abs(r // ws - s // ws), abs(r % ws - s % ws)) <= radius:
                total += float(score[i, s])
        out.append(total / sim.shape[1])
    return torch.tensor(out)


@pytest.mark.parametrize('radius', [0, 1, 2])
def test_agreement_matches_its_definition_in_chunks(radius):
    torch.manual_seed(2)
    src, trg = torch.randn(3, 4, 5, 6), torch.randn(3, 4, 4, 7)
    got = mutual_nn_agreement(src, trg, radius=radius, chunk=3)  # chunks smaller than a row
    torch.testing.assert_close(got, direct_agreement(src, trg, radius), atol=1e-5, rtol=1e-5)
    assert not torch.equal(mutual_nn_agreement(src, trg, radius=0),
                           mutual_nn_agreement(src, trg, radius=5))


def test_agreement_rejects_bad_arguments():
    with pytest.raises(ValueError, match='batch and channel'):
        mutual_nn_agreement(torch.randn(1, 4, 3, 3), torch.randn(1, 5, 3, 3))
    with pytest.raises(ValueError, match='radius=-1'):
        mutual_nn_agreement(torch.randn(1, 4, 3, 3), torch.randn(1, 4, 3, 3), radius=-1)


@torch.no_grad()
def test_picks_the_flip_per_pair_and_mirrors_the_keypoints():
    model = build(pose_alignment=True)
    inputs = pairs()
    torch.manual_seed(3)
    kps = torch.rand(2, 6, 2) * (SIZE - 1)
    preds = model(inputs, samples(kps), mode='predict')
    assert [bool(p.pred_flipped) for p in preds] == [True, False]
    assert model.last_flipped.tolist() == [True, False]
    mirrored = torch.stack([SIZE - 1 - kps[0, :, 0], kps[0, :, 1]], -1)
    assert (preds[0].pred_trg_kps - mirrored).abs().max() <= CELL
    assert (preds[1].pred_trg_kps - kps[1]).abs().max() <= CELL

    plain = build(pose_alignment=False)(inputs, samples(kps), mode='predict')
    assert 'pred_flipped' not in plain[1]
    torch.testing.assert_close(preds[1].pred_trg_kps, plain[1].pred_trg_kps)  # left alone
    # without alignment the mirrored pair matches worse than with it
    assert (plain[0].pred_trg_kps - mirrored).norm(dim=-1).mean() > \
        (preds[0].pred_trg_kps - mirrored).norm(dim=-1).mean()


@torch.no_grad()
def test_off_is_the_plain_matcher():
    model = build(pose_alignment=False)
    inputs = pairs()
    kps = torch.rand(2, 4, 2) * (SIZE - 1)
    preds = model(inputs, samples(kps), mode='predict')
    src, trg = model.encode_pairs(inputs)
    direct = model.match_keypoints(src.maps, kps / (SIZE - 1) * 2 - 1, trg.maps)
    torch.testing.assert_close(torch.stack([p.pred_trg_kps for p in preds]),
                               (direct.kps + 1) / 2 * (SIZE - 1))
    assert model.last_flipped.tolist() == [False, False]


@torch.no_grad()
def test_flow_stays_on_the_original_source_grid():
    model = build(pose_alignment=True)
    inputs = pairs()
    flow = model(inputs, mode='tensor')
    grid = normalized_grid(8, 8)
    mirrored = torch.stack([-grid[0], grid[1]])
    expected = torch.stack([target_to_flow(mirrored[None])[0], torch.zeros(2, 8, 8)])
    assert model.last_flipped.tolist() == [True, False]
    assert (flow - expected).abs().max() <= 2 / 7 + 1e-5  # within a cell
    assert (flow[0] - expected[0]).abs().mean() < 0.1  # and mostly on it

    src, trg = model.encode_pairs(inputs, mirrored=True)
    out = model.match_points(src, None, trg, flow=True)  # the grid's matches are the flow's
    torch.testing.assert_close(out.flow, flow)
    points = out.src_kps[0].reshape(8, 8, 2)
    assert points[0, 0].tolist() == [0.0, 0.0]  # original source pixels, not mirrored ones
    given = model.match_points(src, out.src_kps, trg)
    torch.testing.assert_close(given.trg_kps, out.trg_kps)


def test_loss_mode_matches_as_is():
    calls = []
    model = build(pose_alignment=True).train()
    model.backbone.register_forward_hook(lambda *args: calls.append(args[1][0].shape[0]))
    inputs = pairs()
    kps = torch.rand(2, 4, 2) * (SIZE - 1)
    loss = model(inputs, samples(kps), mode='loss')['loss_kps']
    assert calls == [4]  # both images of both pairs once: no mirrored source
    torch.testing.assert_close(loss, build(pose_alignment=False).train()(
        inputs, samples(kps), mode='loss')['loss_kps'])

    with torch.no_grad():
        model.eval()(inputs, samples(kps), mode='predict')
    assert calls == [4, 4, 2]  # inference: pairs, then the two sources mirrored


def test_mirror_source_transform_mirrors_the_source_only():
    img = tv_tensors.Image(torch.rand(3, 4, 5))
    results = dict(src_img=img, trg_img=img.clone(), src_kps=as_keypoints([[1.0, 2.0]], 4, 5),
                   trg_kps=as_keypoints([[1.0, 2.0]], 4, 5),
                   src_frame=(2.0, 0.5, 2.0, 0.5), trg_frame=(1.0, 0.0, 1.0, 0.0))
    out = PairMirrorSource()(results)
    assert torch.equal(out['src_img'], img.flip(-1)) and torch.equal(out['trg_img'], img)
    assert out['src_kps'].tolist() == [[3.0, 2.0]] and out['trg_kps'].tolist() == [[1.0, 2.0]]
    ax, bx, _, _ = out['src_frame']  # original x -> frame x, through the mirror
    assert (ax, bx) == (-2.0, 4 - 0.5) and out['trg_frame'] == (1.0, 0.0, 1.0, 0.0)
