"""The assembled pipeline learns: a tiny matcher trained for a second recovers a known shift."""
import torch

from corrkit.evaluation import pck
from corrkit.registry import MODELS
from corrkit.structures import PairDataSample

from ..conftest import TINY_MATCHER as TINY

SHIFT = 6  # pixels the target is moved right by


def shifted_pairs(gen, batch=4):
    src = torch.nn.functional.avg_pool2d(torch.rand(batch, 3, 32, 32, generator=gen), 3, 1, 1)
    trg = torch.roll(src, shifts=SHIFT, dims=3)
    kps = torch.rand(batch, 6, 2, generator=gen) * (31 - SHIFT)
    samples = [PairDataSample(src_kps=k, trg_kps=k + torch.tensor([SHIFT, 0.0])) for k in kps]
    return torch.stack([src, trg], 1), samples


def evaluate(model, inputs, samples):
    model.eval()
    with torch.no_grad():
        preds = model(inputs, samples, mode='predict')
    model.train()
    pred = torch.stack([p.pred_trg_kps for p in preds])
    gt = torch.stack([p.trg_kps for p in preds])
    return pck(pred, gt, torch.ones(gt.shape[:2], dtype=torch.bool), 32.0, alpha=0.1).mean()


def test_tiny_matcher_learns_a_shift():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = MODELS.build(TINY)
    optim = torch.optim.Adam(model.parameters(), lr=3e-3)
    held_out = shifted_pairs(gen, batch=8)
    before = evaluate(model, *held_out)
    losses = []
    for _ in range(100):
        loss = model(*shifted_pairs(gen), mode='loss')['loss_kps']
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    after = evaluate(model, *held_out)
    assert sum(losses[-10:]) < 0.2 * sum(losses[:10])
    assert after >= 0.7 and after > before + 0.5, (before, after)
