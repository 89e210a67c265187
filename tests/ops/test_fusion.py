"""Forward-backward scores and the fusion of transferred keypoint candidates."""
import math

import numpy as np
import pytest
import torch

from corrkit.ops.fusion import (FUSIONS, agreement_score, cycle_score, fuse_candidates,
                                weighted_geometric_median)


def _cloud(k=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(k, 2, generator=generator, dtype=torch.float64) * 20 + 100


# --- weighted_geometric_median -------------------------------------------------------------

def test_geometric_median_of_symmetric_points_is_the_centre():
    centre = torch.tensor([40., -7.], dtype=torch.float64)
    offsets = torch.tensor([[3., 1.], [-3., -1.], [-2., 5.], [2., -5.]], dtype=torch.float64)
    median = weighted_geometric_median(centre + offsets, torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(median, centre, atol=1e-6, rtol=0)


def test_geometric_median_is_robust_to_one_far_candidate():
    points = _cloud(k=5)
    weights = torch.ones(5, dtype=torch.float64)
    moved = points.clone()
    moved[0] += torch.tensor([1000., 0.], dtype=torch.float64)
    shift = (weighted_geometric_median(moved, weights) - weighted_geometric_median(points, weights)
             ).norm().item()
    mean_shift = (moved.mean(0) - points.mean(0)).norm().item()
    assert mean_shift == pytest.approx(1000 / 5)
    assert shift < 30  # bounded by the cloud's spread (20 px), not by the 1000 px move


def test_geometric_median_minimises_the_weighted_distance_sum():
    points, weights = _cloud(k=6, seed=3), torch.tensor([1., 2., .5, 3., 1., .2],
                                                        dtype=torch.float64)
    median = weighted_geometric_median(points, weights)

    def cost(p):
        return (weights * (points - p).norm(dim=-1)).sum().item()

    for step in ([0.05, 0], [-0.05, 0], [0, 0.05], [0, -0.05]):
        assert cost(median) <= cost(median + torch.tensor(step, dtype=torch.float64)) + 1e-9


def test_64_steps_come_close_to_the_minimum():
    generator = torch.Generator().manual_seed(0)
    n, k = 200, 12
    points = torch.randn(n, k, 2, generator=generator, dtype=torch.float64) * 5 + 200
    outliers = (torch.rand(n, k, generator=generator) < 0.3) & \
        (torch.rand(n, 1, generator=generator) < 0.7)
    points[outliers] += torch.randn(int(outliers.sum()), 2, generator=generator,
                                    dtype=torch.float64) * 300
    weights = torch.rand(n, k, generator=generator, dtype=torch.float64) * 0.9 + 0.1
    weights[torch.arange(k) >= torch.randint(2, k + 1, (n, 1), generator=generator)] = 0

    def cost(median):
        return (weights * (points - median[:, None]).norm(dim=-1)).sum(-1)

    fast = weighted_geometric_median(points, weights)
    slow = weighted_geometric_median(points, weights, iterations=1000)
    assert ((cost(fast) - cost(slow)) / cost(slow)).max() < 0.01
    assert ((fast - slow).norm(dim=-1) < 0.01).float().mean() > 0.8


def test_a_heavily_weighted_point_pulls_the_median():
    points = _cloud(k=5)
    plain = weighted_geometric_median(points, torch.ones(5, dtype=torch.float64))
    heavy = weighted_geometric_median(points, torch.tensor([10., 1, 1, 1, 1], dtype=torch.float64))
    # more than half of the weight on one point: the median is that point
    assert (heavy - points[0]).norm() < 0.01
    assert (plain - points[0]).norm() > 1


def test_zero_weight_candidates_are_ignored():
    points = _cloud(k=4)
    weights = torch.tensor([1., 0.7, 0.3, 1.], dtype=torch.float64)
    reference = weighted_geometric_median(points, weights)
    padded = torch.cat([weights, torch.zeros(2, dtype=torch.float64)])
    for junk in (5000., float('nan'), float('inf')):
        extra = torch.cat([points, torch.full((2, 2), junk, dtype=torch.float64)])
        torch.testing.assert_close(weighted_geometric_median(extra, padded), reference)


def test_all_zero_weights_give_nan():
    out = weighted_geometric_median(_cloud(k=3), torch.zeros(3, dtype=torch.float64))
    assert torch.isnan(out).all()


# --- fuse_candidates -----------------------------------------------------------------------

def test_rows_without_valid_candidates_are_nan_and_score_zero():
    points = torch.rand(2, 3, 2) * 50
    scores = torch.rand(2, 3)
    valid = torch.tensor([[True, False, True], [False, False, False]])
    for method in FUSIONS:
        fused = fuse_candidates(points, scores, valid, method)
        assert torch.isfinite(fused[0]).all(), method
        assert torch.isnan(fused[1]).all(), method
        score = agreement_score(points, scores, valid, torch.nan_to_num(fused), torch.tensor(50.))
        assert score[1].item() == 0.0, method
        assert score[0].item() > 0.0, method


@pytest.mark.parametrize('k', [1, 2, 3, 4, 5, 6, 7])
def test_median_is_the_lower_middle_over_valid_candidates(k):
    generator = torch.Generator().manual_seed(k)
    points = torch.rand(50, k, 2, generator=generator, dtype=torch.float64) * 100
    valid = torch.rand(50, k, generator=generator) > 0.4
    valid[0] = True  # every candidate
    points[~valid] = float('nan')  # what an invalid candidate holds must not matter
    fused = fuse_candidates(points, torch.rand(50, k, generator=generator, dtype=torch.float64),
                            valid, 'median').numpy()
    for row in range(50):
        chosen = points[row][valid[row]].numpy()
        if len(chosen) == 0:
            assert np.isnan(fused[row]).all()
            continue
        ordered = np.sort(chosen, axis=0)
        expected = ordered[(len(chosen) - 1) // 2]
        np.testing.assert_array_equal(fused[row], expected)
        if len(chosen) % 2:
            np.testing.assert_array_equal(fused[row], np.median(chosen, axis=0))


def test_median_of_even_count_takes_the_lower_middle():
    points = torch.tensor([[[4., 40.], [1., 10.], [3., 30.], [2., 20.], [99., 99.]]])
    valid = torch.tensor([[True, True, True, True, False]])
    fused = fuse_candidates(points, torch.ones(1, 5), valid, 'median')
    assert fused.tolist() == [[2., 20.]]


def test_best_picks_the_highest_valid_score():
    points = torch.tensor([[[1., 1.], [2., 2.], [3., 3.], [4., 4.]]])
    scores = torch.tensor([[0.5, 0.9, 0.7, 0.1]])
    assert fuse_candidates(points, scores, torch.ones(1, 4, dtype=torch.bool),
                           'best').tolist() == [[2., 2.]]
    # the best one invalid: the best of the rest
    valid = torch.tensor([[True, False, True, True]])
    assert fuse_candidates(points, scores, valid, 'best').tolist() == [[3., 3.]]


def test_mean_is_the_score_weighted_mean_of_valid_candidates():
    points = torch.tensor([[[0., 0.], [10., 0.], [0., 30.], [1000., 1000.]]], dtype=torch.float64)
    scores = torch.tensor([[0.2, 0.6, 0.2, 1.0]], dtype=torch.float64)
    valid = torch.tensor([[True, True, True, False]])
    fused = fuse_candidates(points, scores, valid, 'mean')
    torch.testing.assert_close(fused, torch.tensor([[6., 6.]], dtype=torch.float64),
                               atol=1e-4, rtol=0)


def test_geometric_median_fusion_ignores_invalid_candidates():
    points = _cloud(k=4)[None]
    scores = torch.full((1, 4), 0.8, dtype=torch.float64)
    valid = torch.tensor([[True, True, True, False]])
    fused = fuse_candidates(points, scores, valid)
    alone = weighted_geometric_median(points[:, :3], scores[:, :3])
    torch.testing.assert_close(fused, alone)


@pytest.mark.parametrize('method', FUSIONS)
def test_what_invalid_candidates_hold_does_not_matter(method):
    points = torch.tensor([[[10., 10.], [12., 11.], [11., 14.], [0., 0.]]], dtype=torch.float64)
    scores = torch.tensor([[0.9, 0.5, 0.7, 1.0]], dtype=torch.float64)
    valid = torch.tensor([[True, True, True, False]])
    reference = fuse_candidates(points, scores, valid, method)
    assert torch.isfinite(reference).all()
    for junk in (1e4, float('nan'), float('inf')):
        dirty = points.clone()
        dirty[0, 3] = junk
        torch.testing.assert_close(fuse_candidates(dirty, scores, valid, method), reference)


def test_unknown_method_names_the_choices():
    with pytest.raises(ValueError, match='average') as info:
        fuse_candidates(torch.zeros(2, 2), torch.ones(2), torch.ones(2, dtype=torch.bool),
                        'average')
    for name in FUSIONS:
        assert name in str(info.value)


@pytest.mark.parametrize('method', FUSIONS)
def test_batched_shapes_equal_row_by_row(method):
    generator = torch.Generator().manual_seed(7)
    points = torch.rand(3, 4, 5, 2, generator=generator, dtype=torch.float64) * 100
    scores = torch.rand(3, 4, 5, generator=generator, dtype=torch.float64)
    valid = torch.rand(3, 4, 5, generator=generator) > 0.3
    valid[0, 0] = False
    fused = fuse_candidates(points, scores, valid, method)
    score = agreement_score(points, scores, valid, torch.nan_to_num(fused),
                            torch.full((3, 4), 100., dtype=torch.float64))
    assert fused.shape == (3, 4, 2) and score.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            row = fuse_candidates(points[i, j], scores[i, j], valid[i, j], method)
            torch.testing.assert_close(fused[i, j], row, equal_nan=True)
            row_score = agreement_score(points[i, j], scores[i, j], valid[i, j],
                                        torch.nan_to_num(row), torch.tensor(100.,
                                                                            dtype=torch.float64))
            torch.testing.assert_close(score[i, j], row_score)


# --- agreement_score -----------------------------------------------------------------------

def test_agreement_of_a_single_candidate_is_its_score():
    points = torch.tensor([[[30., 40.], [0., 0.]]])
    scores = torch.tensor([[0.37, 0.9]])
    valid = torch.tensor([[True, False]])
    fused = fuse_candidates(points, scores, valid)
    score = agreement_score(points, scores, valid, fused, torch.tensor(100.))
    assert score.item() == pytest.approx(0.37, abs=1e-5)


def test_agreement_falls_when_candidates_disagree():
    scale = torch.tensor(100.)
    scores = torch.full((1, 3), 0.9)
    valid = torch.ones(1, 3, dtype=torch.bool)
    together = torch.tensor([[[50., 50.], [51., 50.], [50., 51.]]])
    apart = torch.tensor([[[50., 50.], [80., 50.], [50., 20.]]])
    s_together = agreement_score(together, scores, valid, fuse_candidates(together, scores, valid),
                                 scale)
    s_apart = agreement_score(apart, scores, valid, fuse_candidates(apart, scores, valid), scale)
    assert s_together.item() > 0.85
    assert s_apart.item() < 0.5
    assert s_apart.item() < s_together.item()


# --- cycle_score ---------------------------------------------------------------------------

def test_cycle_score_is_one_for_a_perfect_return():
    start = torch.tensor([[12., 34.]])
    assert cycle_score(start, start.clone(), torch.tensor(80.), torch.ones(1)).item() == 1.0


def test_cycle_score_decreases_with_distance():
    start = torch.zeros(6, 2)
    back = torch.tensor([[0., 0.], [1., 0.], [0., 3.], [5., 0.], [6., 8.], [20., 0.]])
    score = cycle_score(start, back, torch.tensor(100.), torch.ones(6))
    assert (score[1:] < score[:-1]).all()
    assert score[3].item() == pytest.approx(math.exp(-0.5))  # 5 px = sigma * 100 px


def test_cycle_score_is_scale_invariant():
    start = torch.tensor([[10., 10.], [3., 4.]])
    back = torch.tensor([[13., 14.], [1., 1.]])
    confidence = torch.tensor([0.8, 0.3])
    small = cycle_score(start, back, torch.tensor(60.), confidence)
    large = cycle_score(start * 10, back * 10, torch.tensor(600.), confidence)
    torch.testing.assert_close(small, large)
    assert (small > 0).all() and (small < 1).all()


def test_cycle_score_confidence_power():
    start = back = torch.zeros(3, 2)
    confidence = torch.tensor([0.0, 0.25, 1.0])
    ignored = cycle_score(start, back, torch.tensor(50.), confidence, confidence_power=0)
    assert ignored.tolist() == [1.0, 1.0, 1.0]
    used = cycle_score(start, back, torch.tensor(50.), confidence)
    torch.testing.assert_close(used, torch.tensor([0.0, 0.5, 1.0]))
