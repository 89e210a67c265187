"""Every registered attention against the token-mixer contract; the softmax memory guard."""
import pytest
import torch

from corrkit.layers import AttentionMemoryError, Rotary4D, SoftmaxAttention
from corrkit.models.refiners import MatchToMatchRefiner
from corrkit.registry import ATTENTIONS


def names():
    ATTENTIONS.import_from_location()
    return sorted(ATTENTIONS.module_dict)


def test_the_papers_attentions_are_registered():
    assert {'AdditiveAttention', 'SoftmaxAttention'} <= set(names())


@pytest.mark.parametrize('name', names())
@pytest.mark.parametrize('rope', [True, False])
def test_attention_contract(name, rope):
    torch.manual_seed(0)
    attn = ATTENTIONS.build(dict(type=name, embed_dims=16, num_heads=2, head_dims=4,
                                 rope=Rotary4D(8) if rope else None))
    grid = (2, 3, 2, 2)
    x = torch.randn(2, 24, 16, requires_grad=True)
    out = attn(x, grid)
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.sum().backward()
    assert x.grad.abs().sum() > 0
    # tokens interact: changing one token changes another token's output
    y = x.detach().clone()
    y[:, 5] += 1.0
    assert not torch.allclose(attn(y, grid)[:, 0], out.detach()[:, 0])


def test_softmax_attention_equals_explicit_scores():
    torch.manual_seed(0)
    attn = SoftmaxAttention(8, num_heads=2, head_dims=4).double()
    x = torch.randn(1, 16, 8, dtype=torch.float64)
    q, k, v = attn.qkv(x).chunk(3, dim=-1)
    heads = [torch.softmax(q[..., h * 4:(h + 1) * 4] @ k[..., h * 4:(h + 1) * 4].mT / 2, -1)
             @ v[..., h * 4:(h + 1) * 4] for h in range(2)]
    torch.testing.assert_close(attn(x, (2, 2, 2, 2)), attn.proj(torch.cat(heads, -1)))


def test_softmax_attention_refuses_a_large_grid_before_allocating():
    attn = SoftmaxAttention(16, num_heads=8, head_dims=4)  # default budget: 2 GiB
    grid = (15, 15, 15, 15)
    # a (1, T, 16) view of 16 floats: the input itself costs nothing, the scores 76 GiB
    x = torch.zeros(16).expand(1, 15 ** 4, 16)
    with pytest.raises(AttentionMemoryError, match=r'50625 matches .* 76\.4 GiB'):
        attn(x, grid)
    small = SoftmaxAttention(16, num_heads=2, head_dims=4, max_score_bytes=1000)
    with pytest.raises(AttentionMemoryError, match='max_score_bytes=1000'):
        small(torch.randn(1, 16, 16), (2, 2, 2, 2))


def test_refiner_takes_its_attention_from_the_config():
    refiner = MatchToMatchRefiner(in_channels=3, depth=2, num_heads=2, head_dims=4,
                                  attention=dict(type='SoftmaxAttention'))
    assert all(isinstance(b.attn, SoftmaxAttention) for b in refiner.blocks)
    out = refiner(torch.rand(1, 3, 2, 3, 2, 2))
    assert out.shape == (1, 1, 2, 3, 2, 2)


def test_performer_approximates_softmax_attention():
    """FAVOR+ converges to vanilla attention: relative error 0.15 / 0.07 / 0.016 with
    16 / 256 / 4096 random features on a 3^4 grid (fp64, same weights)."""
    from corrkit.layers import PerformerAttention
    errors = []
    for features in (16, 256, 4096):
        torch.manual_seed(0)
        performer = PerformerAttention(16, num_heads=2, head_dims=4,
                                       num_features=features).double()
        softmax = SoftmaxAttention(16, num_heads=2, head_dims=4).double()
        softmax.load_state_dict({k: v for k, v in performer.state_dict().items()
                                 if k != 'projection'})
        x = torch.randn(2, 81, 16, dtype=torch.float64)
        with torch.no_grad():
            exact = softmax(x, (3, 3, 3, 3))
            errors.append(float((performer(x, (3, 3, 3, 3)) - exact).norm() / exact.norm()))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.03


def test_position_choices_decide_whether_the_refiner_sees_the_grid():
    """Without positions the refiner is equivariant to reordering the grid; with them not."""
    corr = torch.rand(1, 3, 3, 2, 3, 2, dtype=torch.float64)
    flip = lambda c: c.flip(2)  # noqa: E731  reorder source rows
    for position, equivariant in (('none', True), ('rope', False), ('absolute', False)):
        torch.manual_seed(0)
        refiner = MatchToMatchRefiner(in_channels=3, depth=1, num_heads=2, head_dims=4,
                                      position=position).double()
        if position == 'absolute':
            torch.nn.init.normal_(refiner.absolute.tables, std=1.0)
        same = torch.allclose(refiner(flip(corr)), flip(refiner(corr)))
        assert same == equivariant, position
    none = MatchToMatchRefiner(in_channels=3, depth=1, position='none')
    assert none.blocks[0].attn.rope is None and none.absolute is None


def test_position_errors_are_named():
    with pytest.raises(ValueError, match="position must be one of .*'sinusoidal'"):
        MatchToMatchRefiner(in_channels=3, depth=1, position='sinusoidal')
    refiner = MatchToMatchRefiner(in_channels=3, depth=1, position='absolute', max_grid=2)
    with pytest.raises(ValueError, match='exceeds max_size=2'):
        refiner(torch.rand(1, 3, 3, 2, 2, 2))
