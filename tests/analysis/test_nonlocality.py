"""Nonlocality Φ (TransforMatcher Eq. 14) against brute force, its limits, and the tool."""
import copy
import json
import subprocess
import sys

import pytest
import torch

from corrkit.analysis import (PairNonlocality, attention_queries_keys, conv_nonlocality,
                              difficulty_groups, difficulty_level, grid_coordinates,
                              level_proportions, model_nonlocality, pairwise_nonlocality,
                              uniform_nonlocality)
from corrkit.layers import (AdditiveAttention, Attention, LinformerAttention,
                            PerformerAttention, Rotary4D, SoftmaxAttention)
from corrkit.models.base import Refiner


def brute_force(queries, keys, grid, index=None):
    """Φ per head from the explicit T x T attention and distance maps."""
    c = grid_coordinates(grid, queries.dtype)
    attn = torch.softmax(queries @ keys.mT, dim=-1)
    dist = (c[:, None] - c[None]).square().sum(-1)
    phi = (attn * dist).sum(-1)  # (B, h, T)
    return phi.mean(-1) if index is None else phi[..., index].mean(-1)


def test_pairwise_nonlocality_equals_the_explicit_definition():
    torch.manual_seed(0)
    grid = (2, 3, 2, 3)
    q, k = torch.randn(2, 3, 36, 4, dtype=torch.float64), torch.randn(2, 3, 36, 4,
                                                                      dtype=torch.float64)
    torch.testing.assert_close(pairwise_nonlocality(q, k, grid, chunk=7), brute_force(q, k, grid))
    sampled = pairwise_nonlocality(q, k, grid, num_queries=10, seed=3)
    index = torch.randperm(36, generator=torch.Generator().manual_seed(3))[:10]
    torch.testing.assert_close(sampled, brute_force(q, k, grid, index))


def test_nonlocality_limits_self_attention_and_uniform_attention():
    grid = (3, 2, 2, 3)
    t = 36
    uniform = pairwise_nonlocality(torch.zeros(1, 1, t, 2), torch.randn(1, 1, t, 2), grid)
    assert uniform.item() == pytest.approx(uniform_nonlocality(grid))
    assert uniform_nonlocality(grid) == pytest.approx((8 + 3 + 3 + 8) / 6)
    eye = 50 * torch.eye(t, dtype=torch.float64)[None, None]  # every match attends to itself
    assert pairwise_nonlocality(eye, eye, grid).item() == pytest.approx(0, abs=1e-9)


def test_conv_nonlocality_is_the_mean_squared_kernel_offset():
    assert conv_nonlocality((3,) * 4) == pytest.approx(4 * 2 / 3)
    assert conv_nonlocality((5,) * 6) == pytest.approx(6 * 2)
    assert conv_nonlocality((1, 3, 1, 3)) == pytest.approx(4 / 3)
    centre = torch.zeros(2, 1, 3, 3, 3, 3)
    centre[..., 1, 1, 1, 1] = 1
    corner = torch.zeros(2, 1, 3, 3, 3, 3)
    corner[..., 0, 2, 0, 2] = -1
    assert conv_nonlocality((3,) * 4, centre) == 0
    assert conv_nonlocality((3,) * 4, centre + corner) == pytest.approx(2.0)
    with pytest.raises(ValueError, match='does not end in the kernel size'):
        conv_nonlocality((5,) * 4, centre)


def test_softmax_attentions_expose_their_own_attention_weights():
    torch.manual_seed(0)
    grid = (2, 2, 2, 2)
    x = torch.randn(1, 16, 16, dtype=torch.float64)
    for attn in (SoftmaxAttention(16, 2, 4, rope=Rotary4D(8)), PerformerAttention(16, 2, 4)):
        attn = attn.double()
        q, k = attention_queries_keys(attn, x, grid)
        _, _, v = attn.project(x, grid)
        raw_q, raw_k, _ = attn.project(x, grid)
        # the layer's exact softmax attention, from the pairs the analysis scores
        expected = torch.nn.functional.scaled_dot_product_attention(raw_q, raw_k, v)
        torch.testing.assert_close(torch.softmax(q @ k.mT, -1) @ v, expected)


def test_additive_attention_scores_paper_and_relative():
    torch.manual_seed(0)
    attn = AdditiveAttention(16, 2, 4, rope=Rotary4D(8)).double()
    x = torch.randn(1, 81, 16, dtype=torch.float64)
    grid = (3, 3, 3, 3)
    q, k, _ = attn.project(x, grid)
    alpha = attn.query_weights(q)
    paper_q, paper_k = attention_queries_keys(attn, x, grid, 'paper')
    torch.testing.assert_close(paper_q, (q * alpha.transpose(1, 2)[..., None]).transpose(1, 2))
    torch.testing.assert_close(paper_k, k.transpose(1, 2))
    relative_q, _ = attention_queries_keys(attn, x, grid, 'relative')
    torch.testing.assert_close(relative_q, paper_q * 81 * 4 ** -0.5)
    # the paper's Q-hat is about Q / T: its attention is nearly uniform
    paper = pairwise_nonlocality(paper_q, paper_k, grid)
    assert torch.allclose(paper, torch.full_like(paper, uniform_nonlocality(grid)), rtol=0.01)
    with pytest.raises(ValueError, match="scores must be one of .*'sharp'"):
        attention_queries_keys(attn, x, grid, 'sharp')


def test_linformer_has_no_pairwise_map():
    attn = LinformerAttention(16, 2, 4, num_tokens=16, proj_dims=4)
    with pytest.raises(ValueError, match='LinformerAttention has no pairwise attention'):
        attention_queries_keys(attn, torch.randn(1, 16, 16), (2, 2, 2, 2))


def test_model_nonlocality_per_layer(tiny_matcher):
    torch.manual_seed(0)
    phi = model_nonlocality(tiny_matcher, torch.randn(2, 2, 3, 64, 64), 'relative', None)
    assert phi.shape == (2, 2)  # two pairs, two attention blocks
    assert (phi > 0).all() and (phi < 4 * 3 ** 2).all()  # inside the 4^4 grid's diameter²
    assert not torch.equal(phi[0], phi[1])


class TokenMixerRefiner(Refiner):
    """A refiner from outside corrkit: one softmax attention over the match tokens."""

    def __init__(self, in_channels: int, expose: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, 1
        self.embed = torch.nn.Linear(in_channels, 8)
        self.mixer = SoftmaxAttention(8, num_heads=2, head_dims=4)
        self.readout = torch.nn.Linear(8, 1)
        self.expose = expose

    def attention_layers(self):
        return [self.mixer] if self.expose else []

    def forward(self, corr):
        grid = tuple(corr.shape[2:])
        x = self.embed(corr.flatten(2).transpose(1, 2))
        x = self.readout(x + self.mixer(x, grid))
        return x.transpose(1, 2).unflatten(2, grid)


def test_a_plugin_refiner_that_exposes_its_attention_is_analysed(tiny_matcher):
    torch.manual_seed(0)
    model = copy.deepcopy(tiny_matcher)
    model.refiner = TokenMixerRefiner(model.refiner.in_channels)
    inputs = torch.randn(2, 2, 3, 64, 64)
    seen = []
    hook = model.refiner.mixer.register_forward_hook(lambda m, args, out: seen.append(args))
    phi = model_nonlocality(model, inputs, num_queries=None)
    hook.remove()
    x, grid = seen[0]
    q, k = model.refiner.mixer.pairwise_queries_keys(x, grid)
    assert phi.shape == (2, 1)
    torch.testing.assert_close(phi[:, 0], pairwise_nonlocality(q, k, grid).mean(1))
    model.refiner.expose = False
    with pytest.raises(ValueError, match='TokenMixerRefiner exposes no attention layers'):
        model_nonlocality(model, inputs)


def test_an_attention_without_a_pairwise_map_is_named(tiny_matcher):
    class SummaryAttention(Attention):
        def __init__(self):
            super().__init__()
            self.embed_dims = 8

        def forward(self, x, grid):
            return x.mean(1, keepdim=True).expand_as(x)

    model = copy.deepcopy(tiny_matcher)
    model.refiner = TokenMixerRefiner(model.refiner.in_channels)
    model.refiner.mixer = SummaryAttention()
    with pytest.raises(ValueError, match='SummaryAttention has no pairwise attention'):
        model_nonlocality(model, torch.randn(1, 2, 3, 64, 64))


def test_difficulty_groups_and_levels():
    assert [difficulty_level('truncation', v) for v in range(4)] == \
        ['easy', 'medium', 'medium', 'hard']
    assert [difficulty_level('viewpoint_variation', v) for v in range(3)] == \
        ['easy', 'medium', 'hard']
    pairs = [PairNonlocality(str(i), [float(v), 1.0], {'occlusion': o})
             for i, (v, o) in enumerate([(9, 0), (1, 3), (5, 1), (3, 0), (7, 2)])]
    groups = difficulty_groups(pairs, 2)
    assert groups == [[1, 3], [2, 4, 0]]
    shares = level_proportions(pairs, groups, 'occlusion')
    assert shares[0] == {'easy': 0.5, 'medium': 0.0, 'hard': 0.5}
    assert shares[1] == pytest.approx({'easy': 1 / 3, 'medium': 2 / 3, 'hard': 0.0})
    assert len(difficulty_groups(pairs, 20)) == 5  # no empty groups


@pytest.fixture(scope='module')
def mini_data(tmp_path_factory):
    from corrkit.datasets.mini.generator import make_mini_dataset
    return make_mini_dataset(tmp_path_factory.mktemp('mini') / 'data',
                             views=dict(trn=1, val=1, test=2), image_size=96)


def test_tool_writes_both_figures_and_the_report(repo, tmp_path, mini_data):
    out = tmp_path / 'nl'
    done = subprocess.run(
        [sys.executable, 'tools/analysis/nonlocality.py', 'configs/transformatcher_tiny.py',
         '--out-dir', str(out), '--groups', '3', '--num-queries', '64', '--conv-dims', '4',
         '--conv-kernels', '3', '5', '--cfg-options', 'model.backbone.pretrained=False',
         f'test_dataloader.dataset.data_root={mini_data}'],
        cwd=repo, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert 'attention layer 2' in done.stdout and 'conv 4D K=5' in done.stdout
    report = json.loads((out / 'nonlocality.json').read_text())
    assert len(report['pairs']) == 6 and len(report['layers']) == 2
    assert report['conv'] == {'4D K=3': pytest.approx(8 / 3), '4D K=5': 8.0}
    assert report['pairs'][0]['difficulty'].keys() >= {'viewpoint_variation', 'occlusion'}
    for name in ('nonlocality_hist.png', 'nonlocality_difficulty.png'):
        assert (out / name).read_bytes()[:4] == b'\x89PNG'


def test_report_on_a_convolutional_refiner_and_on_a_refiner_without_layers(tmp_path):
    from corrkit.apis import nonlocality_report
    tiny = {'model.backbone.pretrained': False, 'model.backbone.model_name': 'test_resnet'}
    report = nonlocality_report('configs/ncnet_spair.py', out_dir=tmp_path / 'nc',
                                cfg_options=tiny, conv_dims=(4,), conv_kernels=(3,))
    learned = [k for k in report['conv'] if k.startswith('learned')]
    assert learned == ['learned layer 1 5x5x5x5', 'learned layer 2 5x5x5x5',
                       'learned layer 3 5x5x5x5']
    assert all(0 < report['conv'][k] < 16 for k in learned)  # inside a 5^4 kernel
    assert report['pairs'] == [] and report['figures'] == [str(tmp_path / 'nc' /
                                                               'nonlocality_hist.png')]
    with pytest.raises(ValueError, match='MeanRefiner has neither attention layers .* nor convolution kernels'):
        nonlocality_report('configs/zeroshot_mobilenetv2.py', out_dir=tmp_path / 'z',
                           cfg_options={'model.backbone.pretrained': False})
