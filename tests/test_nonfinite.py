"""A non-finite loss never reaches the weights: training stops, or skips the batch."""
import math

import pytest
import torch

from corrkit.apis.train import train
from corrkit.engine import GuardedOptimWrapper, NonFiniteLossError
from corrkit.models.losses import KeypointL2Loss
from tests.test_train import CONFIG, mini, options  # noqa: F401  (mini is a fixture)


def poison(monkeypatch, calls):
    """Make the keypoint loss NaN on the given (1-based) calls."""
    original = KeypointL2Loss.forward
    seen = []

    def forward(self, *args, **kwargs):
        seen.append(1)
        loss = original(self, *args, **kwargs)
        return loss * math.nan if len(seen) in calls else loss

    monkeypatch.setattr(KeypointL2Loss, 'forward', forward)


def test_nan_loss_stops_training_and_keeps_the_last_checkpoint(repo, mini, tmp_path,
                                                               monkeypatch):  # noqa: F811
    monkeypatch.chdir(repo)
    poison(monkeypatch, {5})  # 3 iterations per epoch: epoch 2, iteration 5
    work = tmp_path / 'work'
    with pytest.raises(NonFiniteLossError, match=r'non-finite training loss \(nan\) at epoch 2, '
                                                 r'iteration 5; .*The last checkpoint, '
                                                 r'.*epoch_1.pth, is intact'):
        train(CONFIG, str(work), options(mini, 3))
    assert not (work / 'epoch_2.pth').exists()
    state = torch.load(work / 'epoch_1.pth', weights_only=True)['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_skip_policy_drops_nan_batches_and_counts_them(repo, mini, tmp_path,
                                                       monkeypatch):  # noqa: F811
    monkeypatch.chdir(repo)
    poison(monkeypatch, {2, 3})
    opts = dict(options(mini, 1), **{'optim_wrapper.nonfinite': 'skip'})
    runner = train(CONFIG, str(tmp_path / 'work'), opts)
    assert runner.optim_wrapper.skipped == 2
    assert runner.message_hub.get_scalar('train/nonfinite_skips').current() == 2
    weights = runner.model.state_dict().values()
    assert all(torch.isfinite(v).all() for v in weights if v.is_floating_point())
    poison(monkeypatch, {2, 3, 4})
    capped = dict(opts, **{'optim_wrapper.max_skips': 1})
    with pytest.raises(NonFiniteLossError, match=r'after 1 skipped batches \(max_skips=1\)'):
        train(CONFIG, str(tmp_path / 'capped'), capped)


def test_a_skipped_batch_changes_nothing():
    """Adam with momentum would still move the weights on a zero gradient: skip means no step."""
    layer = torch.nn.Linear(2, 1)
    wrapper = GuardedOptimWrapper(torch.optim.Adam(layer.parameters(), lr=0.1),
                                  nonfinite='skip')
    wrapper.update_params(layer(torch.ones(1, 2)).sum())  # one real step builds momentum
    before = [p.detach().clone() for p in layer.parameters()]
    wrapper.update_params(layer(torch.ones(1, 2)).sum() * math.inf)
    assert all(torch.equal(a, b) for a, b in zip(before, layer.parameters()))
    assert all(p.grad is None or not p.grad.any() for p in layer.parameters())
    with pytest.raises(ValueError, match="nonfinite must be one of .*'ignore'"):
        GuardedOptimWrapper(torch.optim.Adam(layer.parameters()), nonfinite='ignore')
