import pytest
import torch

from corrkit.layers import Rotary4D
from corrkit.ops import apply_rope_4d, grid_positions_4d, rope_4d_angles


def dot_at(q, k, m, n, base=100.0):
    pos = torch.stack([m, n]).to(torch.float64)
    x = torch.stack([q, k])[None]  # (1, 2 tokens, D)
    rq, rk = apply_rope_4d(x, pos, base)[0]
    return (rq * rk).sum()


def test_dot_product_depends_only_on_the_offset():
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 32, generator=gen, dtype=torch.float64)
    for _ in range(5):
        m = torch.randint(0, 15, (4,), generator=gen)
        n = torch.randint(0, 15, (4,), generator=gen)
        shift = torch.randint(-7, 8, (4,), generator=gen)
        torch.testing.assert_close(dot_at(q, k, m, n), dot_at(q, k, m + shift, n + shift))


@pytest.mark.parametrize('axis', range(4))
def test_every_axis_is_encoded(axis):
    gen = torch.Generator().manual_seed(axis)
    q, k = torch.randn(2, 32, generator=gen, dtype=torch.float64)
    m = torch.tensor([3, 4, 5, 6])
    n = m.clone()
    moved = n.clone()
    moved[axis] += 2
    assert not torch.isclose(dot_at(q, k, m, n), dot_at(q, k, m, moved))


def test_axis_shift_on_one_axis_is_the_same_for_both_positions_per_axis():
    """Shifting both tokens along one axis only leaves the product unchanged."""
    q, k = torch.randn(2, 16, dtype=torch.float64)
    m, n = torch.tensor([1, 2, 3, 4]), torch.tensor([4, 0, 2, 9])
    for axis in range(4):
        s = torch.zeros(4, dtype=torch.long)
        s[axis] = 5
        torch.testing.assert_close(dot_at(q, k, m, n), dot_at(q, k, m + s, n + s))


def test_heads_of_four_dims_spread_axes_across_heads():
    angles = rope_4d_angles(torch.eye(4, dtype=torch.float64), dims=32)  # unit step per axis
    pair_axis = angles.abs().argmax(0)  # which axis moves each pair
    per_head = pair_axis.view(8, 2)
    assert set(pair_axis.tolist()) == {0, 1, 2, 3}
    assert {tuple(h.tolist()) for h in per_head} == {(0, 1), (2, 3)}


def test_positions_follow_token_flattening_order():
    pos = grid_positions_4d(2, 3, 4, 5)
    assert pos.shape == (120, 4)
    index = ((1 * 3 + 2) * 4 + 3) * 5 + 4
    assert pos[index].tolist() == [1, 2, 3, 4]


def test_rotary_module_matches_functional_and_validates():
    rope = Rotary4D(16)
    x = torch.randn(2, 2 * 2 * 3 * 3, 16)
    out = rope(x, (2, 2, 3, 3))
    torch.testing.assert_close(out, apply_rope_4d(x, grid_positions_4d(2, 2, 3, 3)))
    with pytest.raises(ValueError, match='at least 8'):
        Rotary4D(6)
    with pytest.raises(ValueError, match='do not match'):
        rope(x, (2, 2, 3, 4))


def test_rotary_module_complex_path_equals_rotate_pairs():
    """The module rotates float32/64 as complex products; bfloat16 through rotate_pairs."""
    from corrkit.layers import Rotary4D
    from corrkit.ops import grid_positions_4d, rope_4d_angles, rotate_pairs
    grid = (2, 3, 2, 3)
    angles = rope_4d_angles(grid_positions_4d(*grid, dtype=torch.float64), 16, 100.0)
    rope = Rotary4D(16)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-6), (torch.bfloat16, 1e-2)):
        x = torch.randn(2, 36, 48, dtype=torch.float64)[..., 8:24].to(dtype)  # strided view
        expected = rotate_pairs(x.double(), angles.cos(), angles.sin())
        out = rope(x, grid)
        assert out.dtype == dtype
        torch.testing.assert_close(out.double(), expected, atol=tol, rtol=tol)
    odd = torch.randn(1, 36, 17)[..., 1:]  # odd strides: copied before the complex view
    torch.testing.assert_close(rope(odd, grid), rope(odd.contiguous(), grid))
