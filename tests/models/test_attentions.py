"""Every registered attention against the token-mixer contract; the softmax memory guard."""
import pytest
import torch

from corrkit.layers import AttentionMemoryError, Rotary4D, SoftmaxAttention
from corrkit.models.refiners import MatchToMatchRefiner
from corrkit.registry import ATTENTIONS
from corrkit.testing import check_attention


# Arguments beyond the injected sizes, per attention (the contract grid has 24 tokens).
CASES = {'LinformerAttention': dict(num_tokens=24, proj_dims=8)}


def names():
    ATTENTIONS.import_from_location()
    return sorted(ATTENTIONS.module_dict)


def test_the_papers_attentions_are_registered():
    assert {'AdditiveAttention', 'LinformerAttention', 'PerformerAttention',
            'SoftmaxAttention'} <= set(names())


@pytest.mark.parametrize('name', names())
@pytest.mark.parametrize('rope', [True, False])
def test_attention_contract(name, rope):
    torch.manual_seed(0)
    attn = ATTENTIONS.build(dict(type=name, embed_dims=16, num_heads=2, head_dims=4,
                                 rope=Rotary4D(8) if rope else None, **CASES.get(name, {})))
    grid = (2, 3, 2, 2)
    check_attention(attn, grid)
    # tokens interact: changing one token changes another token's output
    x = torch.randn(2, 24, 16)
    y = x.clone()
    y[:, 5] += 1.0
    assert not torch.allclose(attn(y, grid)[:, 0], attn(x, grid)[:, 0])


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


def linformer_and_softmax(num_tokens, proj_dims, projection):
    """A Linformer with the given ``(proj_dims, num_tokens)`` projection and a softmax
    attention with the same query/key/value and output weights (fp64)."""
    from corrkit.layers import LinformerAttention
    torch.manual_seed(0)
    linformer = LinformerAttention(16, num_heads=2, head_dims=4, num_tokens=num_tokens,
                                   proj_dims=proj_dims).double()
    with torch.no_grad():
        linformer.key_proj.copy_(projection)
    softmax = SoftmaxAttention(16, num_heads=2, head_dims=4).double()
    softmax.load_state_dict({k: v for k, v in linformer.state_dict().items() if k != 'key_proj'})
    return linformer, softmax


def test_linformer_with_identity_projections_is_softmax_attention():
    linformer, softmax = linformer_and_softmax(81, 81, torch.eye(81, dtype=torch.float64))
    x = torch.randn(2, 81, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(linformer(x, (3, 3, 3, 3)), softmax(x, (3, 3, 3, 3)),
                                   atol=1e-12, rtol=0)


def test_linformer_approximates_softmax_attention_on_low_rank_tokens():
    """81 tokens in 9 equal groups, each token its group's centre plus noise of scale eps;
    Linformer projects to the 9 group means. Relative error to vanilla attention
    (same weights, fp64): ~1e-16 / 9e-6 / 9e-4 / 9e-3 at eps = 0 / 0.01 / 0.1 / 0.3."""
    groups = torch.arange(81) % 9
    pooling = torch.nn.functional.one_hot(groups, 9).T.double() / 9
    linformer, softmax = linformer_and_softmax(81, 9, pooling)
    torch.manual_seed(1)
    centres = torch.randn(2, 9, 16, dtype=torch.float64)
    noise = torch.randn(2, 81, 16, dtype=torch.float64)
    errors = []
    for eps in (0.0, 0.01, 0.1, 0.3):
        x = centres[:, groups] + eps * noise
        with torch.no_grad():
            exact = softmax(x, (3, 3, 3, 3))
            errors.append(float((linformer(x, (3, 3, 3, 3)) - exact).norm() / exact.norm()))
    assert errors[0] < 1e-12
    assert errors[1] < errors[2] < errors[3] < 0.02
    assert errors[2] < 2e-3


def test_linformer_is_tied_to_its_number_of_matches():
    from corrkit.layers import LinformerAttention
    with pytest.raises(ValueError, match='needs num_tokens'):
        LinformerAttention(16, num_heads=2, head_dims=4)
    attn = LinformerAttention(16, num_heads=2, head_dims=4, num_tokens=16, proj_dims=4)
    with pytest.raises(ValueError, match=r'num_tokens=16 matches but got 24 \(grid \(2, 3, 2, 2\)'):
        attn(torch.randn(1, 24, 16), (2, 3, 2, 2))
    separate = LinformerAttention(16, num_heads=2, head_dims=4, num_tokens=16, proj_dims=4,
                                  share_kv=False)
    assert attn.value_proj is None and separate.value_proj.shape == (4, 16)
    assert sum(p.numel() for p in separate.parameters()) == \
        sum(p.numel() for p in attn.parameters()) + 4 * 16


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


def test_additive_attention_equals_the_papers_equations():
    """Eq. 5-7 written out, with H = K * q-bar materialised, against the layer (fp64)."""
    from corrkit.layers import AdditiveAttention
    torch.manual_seed(0)
    attn = AdditiveAttention(16, num_heads=2, head_dims=4, rope=Rotary4D(8)).double()
    x = torch.randn(2, 36, 16, dtype=torch.float64)
    grid = (3, 2, 3, 2)
    q, k, v = attn.qkv(x).chunk(3, dim=-1)
    q, k = attn.rope(q, grid), attn.rope(k, grid)
    heads = []
    for h in range(2):
        qh, kh, vh = (z[..., 4 * h:4 * h + 4] for z in (q, k, v))
        alpha = torch.softmax(qh @ attn.query_weight[h] / 2, dim=1)           # (B, T)
        q_bar = (alpha[..., None] * qh).sum(1, keepdim=True)                 # (B, 1, 4)
        hidden = kh * q_bar                                                   # H = K * q-bar
        beta = torch.softmax(hidden @ attn.key_weight[h] / 2, dim=1)
        k_bar = (beta[..., None] * hidden).sum(1, keepdim=True)
        heads.append(vh * k_bar + qh)
    expected = attn.proj(torch.cat(heads, -1))
    torch.testing.assert_close(attn(x, grid), expected, atol=1e-12, rtol=0)
