"""KeypointCrossEntropyLoss against a direct definition; masking, empty batches, regression."""
import numpy as np
import pytest
import torch

from corrkit.errors import ContractError
from corrkit.models.base import KeypointPrediction, SimilarityLoss
from corrkit.models.losses import KeypointCrossEntropyLoss
from corrkit.ops import expected_position_2d
from corrkit.testing import check_loss


def direct_loss(sim, target, valid, temperature, distribution, sigma):
    """Loops over keypoints and cells, in numpy."""
    b, k, h, w = sim.shape
    terms = []
    for i in range(b):
        for j in range(k):
            if not valid[i, j]:
                continue
            px, py = (np.clip(target[i, j], -1, 1) + 1) / 2 * np.array([w - 1, h - 1])
            q = np.zeros((h, w))
            for r in range(h):
                for c in range(w):
                    if distribution == 'gaussian':
                        q[r, c] = np.exp(-((c - px) ** 2 + (r - py) ** 2) / (2 * sigma ** 2))
                    else:
                        q[r, c] = max(0, 1 - abs(c - px)) * max(0, 1 - abs(r - py))
            q /= q.sum()
            logits = sim[i, j] / temperature
            log_p = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
            terms.append(-(q * log_p).sum())
    return np.mean(terms)


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    sim = torch.rand(3, 4, 5, 6, generator=gen, dtype=torch.float64) * 2 - 1
    target = torch.rand(3, 4, 2, generator=gen, dtype=torch.float64) * 2.2 - 1.1  # some outside
    valid = torch.tensor([[1, 1, 0, 1], [0, 0, 0, 0], [1, 0, 1, 1]], dtype=torch.bool)
    return sim, target, valid


@pytest.mark.parametrize('distribution', ['gaussian', 'bilinear'])
def test_matches_the_direct_definition(batch, distribution):
    sim, target, valid = batch
    loss = KeypointCrossEntropyLoss(temperature=0.1, distribution=distribution, sigma=1.5)
    expected = direct_loss(sim.numpy(), target.numpy(), valid.numpy(), 0.1, distribution, 1.5)
    assert loss(sim, None, target, valid).item() == pytest.approx(expected, rel=1e-10)


def test_bilinear_target_has_the_true_point_as_its_expectation():
    target = torch.tensor([[[0.3, -0.45], [-1.0, 1.0]]], dtype=torch.float64)
    weights = KeypointCrossEntropyLoss(distribution='bilinear').target_distribution(target, (5, 7))
    torch.testing.assert_close(expected_position_2d(weights), target)
    assert (weights > 0).sum((-2, -1)).tolist() == [[4, 1]]  # four cells; one on a corner


def test_masked_keypoints_get_no_gradient_and_an_empty_batch_is_zero(batch):
    sim, target, valid = batch
    sim.requires_grad_()
    kps = torch.zeros(3, 4, 2, dtype=torch.float64, requires_grad=True)
    loss = KeypointCrossEntropyLoss(regression_weight=1.0)
    value = loss(sim, KeypointPrediction(kps, torch.ones(3, 4)), target, valid)
    g_sim, g_kps = torch.autograd.grad(value, [sim, kps])
    assert g_sim[~valid].abs().max() == 0 and g_kps[~valid].abs().max() == 0
    assert (g_sim[valid].abs().sum((-2, -1)) > 0).all() and (g_kps[valid].abs().sum(-1) > 0).all()
    empty = loss(sim, None, target, torch.zeros_like(valid))
    assert empty.item() == 0 and empty.requires_grad


def test_regression_term_adds_the_mean_squared_distance(batch):
    sim, target, valid = batch
    kps = torch.zeros(3, 4, 2, dtype=torch.float64)
    pred = KeypointPrediction(kps, torch.ones(3, 4))
    plain = KeypointCrossEntropyLoss()(sim, pred, target, valid)
    with_reg = KeypointCrossEntropyLoss(regression_weight=0.5)(sim, pred, target, valid)
    l2 = (target[valid] ** 2).sum(-1).mean()
    assert (with_reg - plain).item() == pytest.approx(0.5 * l2.item(), rel=1e-10)
    # without a prediction the regression term is skipped
    assert KeypointCrossEntropyLoss(regression_weight=0.5)(sim, None, target, valid) == plain


def test_a_peak_on_the_target_cell_lowers_the_loss():
    target = torch.tensor([[[0.5, 0.0]]])  # the centre of cell (row 1, col 3) of a 3 x 5 grid
    right, wrong = torch.zeros(1, 1, 3, 5), torch.zeros(1, 1, 3, 5)
    right[0, 0, 1, 3], wrong[0, 0, 1, 1] = 1.0, 1.0
    valid = torch.tensor([[True]])
    one_hot = KeypointCrossEntropyLoss(distribution='bilinear')
    assert one_hot(right, None, target, valid) < 1e-6 < 1 < one_hot(wrong, None, target, valid)
    gaussian = KeypointCrossEntropyLoss()
    assert gaussian(right, None, target, valid) < gaussian(wrong, None, target, valid)


def test_check_loss_dispatches_on_the_declared_kind():
    assert isinstance(KeypointCrossEntropyLoss(), SimilarityLoss)
    check_loss(KeypointCrossEntropyLoss(distribution='bilinear', regression_weight=1.0))

    class LeakyLoss(KeypointCrossEntropyLoss):  # masked keypoints leak into the loss
        def forward(self, similarity, pred, target, valid):
            return super().forward(similarity, pred, target, valid) + similarity.mean()

    with pytest.raises(ContractError, match='LeakyLoss.*masked keypoints get a gradient'):
        check_loss(LeakyLoss())


@pytest.mark.parametrize('kwargs, match', [
    (dict(distribution='soft'), "distribution must be one of.*'soft'"),
    (dict(temperature=0.0), 'temperature > 0'),
    (dict(sigma=-1.0), 'sigma > 0'),
    (dict(regression_weight=-1.0), 'weights must be >= 0'),
])
def test_bad_arguments_name_the_class_and_value(kwargs, match):
    with pytest.raises(ValueError, match=f'KeypointCrossEntropyLoss.*{match}'):
        KeypointCrossEntropyLoss(**kwargs)


def test_a_learned_temperature_is_a_parameter_that_gets_gradients(batch):
    sim, target, valid = batch
    fixed = KeypointCrossEntropyLoss(temperature=0.1)
    learned = KeypointCrossEntropyLoss(temperature=0.1, learn_temperature=True).double()
    assert list(dict(fixed.named_parameters())) == [] and fixed.state_dict() == {}
    assert list(dict(learned.named_parameters())) == ['log_temperature']
    # it starts at the given temperature: the same loss
    torch.testing.assert_close(learned(sim, None, target, valid), fixed(sim, None, target, valid))
    learned(sim, None, target, valid).backward()
    assert learned.log_temperature.grad is not None and learned.log_temperature.grad != 0
    with torch.no_grad():  # it never goes below 1e-3
        learned.log_temperature.fill_(-20.0)
    assert learned.current_temperature.item() == pytest.approx(1e-3)
    assert 'temperature=0.1 (learned)' in repr(learned)
