"""TimmViTHypercolumnBackbone: tapped blocks, sizes, pruning, weights and errors (timm test_vit)."""
import math

import pytest
import timm
import torch
import torch.nn.functional as F

from corrkit.models.backbones import TimmViTHypercolumnBackbone

PATCH, DEPTH, DIMS = 16, 6, 64  # timm's test_vit


def _random_vit() -> torch.nn.Module:
    torch.manual_seed(0)
    ref = timm.create_model('test_vit', dynamic_img_size=True).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.02 * torch.randn_like(p))  # non-trivial norms, biases and tokens
    return ref


def _reference_maps(ref, images, blocks, norm):
    """Run the timm model step by step and keep the patch tokens of ``blocks``."""
    n, _, h, w = images.shape
    gh, gw = math.ceil(h / PATCH), math.ceil(w / PATCH)
    x = F.pad(images, (0, gw * PATCH - w, 0, gh * PATCH - h))
    x = ref._pos_embed(ref.patch_embed(x))
    maps = []
    for i, block in enumerate(ref.blocks):
        x = block(x)
        if i in blocks:
            tokens = (ref.norm(x) if norm else x)[:, ref.num_prefix_tokens:]
            maps.append(tokens.reshape(n, gh, gw, -1).permute(0, 3, 1, 2))
    return maps


@pytest.mark.parametrize('norm', [True, False])
def test_tapped_maps_equal_the_timm_blocks(norm):
    ref = _random_vit()
    net = TimmViTHypercolumnBackbone('test_vit', taps=(3, -5), norm=norm).eval()
    own = net.vit.state_dict()
    net.vit.load_state_dict({k: v for k, v in ref.state_dict().items() if k in own})
    images = torch.randn(2, 3, 70, 53)
    with torch.no_grad():
        feats = net(images)
        expected = _reference_maps(ref, images, blocks=(1, 3), norm=norm)
    assert net.taps == (1, 3)  # -5 is block 1; maps come shallow to deep
    assert len(feats) == 2
    for feat, exp in zip(feats, expected):
        torch.testing.assert_close(feat, exp, atol=1e-5, rtol=0)


@pytest.mark.parametrize('size', [(32, 32), (33, 47), (70, 53), (16, 81)])
def test_any_input_size_gives_the_ceil_grid(size):
    net = TimmViTHypercolumnBackbone('test_vit', taps=(0, -1)).eval()
    assert net.out_channels == [DIMS, DIMS] and net.strides == [PATCH, PATCH]
    with torch.no_grad():
        feats = net(torch.rand(1, 3, *size))
    grid = (math.ceil(size[0] / PATCH), math.ceil(size[1] / PATCH))
    assert net.feature_sizes(*size) == [grid, grid]
    assert [tuple(f.shape) for f in feats] == [(1, DIMS, *grid)] * 2


def test_blocks_after_the_last_tapped_one_are_removed():
    full = sum(p.numel() for p in timm.create_model('test_vit').parameters())
    net = TimmViTHypercolumnBackbone('test_vit', taps=(1, 3))
    assert len(net.vit.blocks) == 4
    assert isinstance(net.vit.head, torch.nn.Identity)
    assert sum(p.numel() for p in net.parameters()) < full
    # every remaining parameter is used (no unused parameters under DDP)
    sum(f.sum() for f in net(torch.rand(1, 3, 32, 32))).backward()
    assert all(p.grad is not None for p in net.parameters())
    unnormed = TimmViTHypercolumnBackbone('test_vit', taps=(1, 3), norm=False)
    assert isinstance(unnormed.vit.norm, torch.nn.Identity)


@pytest.mark.parametrize('suffix', ['pth', 'safetensors'])
def test_local_checkpoint_is_loaded(tmp_path, suffix):
    ref = _random_vit()
    path = tmp_path / f'weights.{suffix}'
    if suffix == 'pth':
        torch.save(ref.state_dict(), path)
    else:
        from safetensors.torch import save_file
        save_file(ref.state_dict(), str(path))
    net = TimmViTHypercolumnBackbone('test_vit', taps=(2,), pretrained=str(path))
    torch.testing.assert_close(net.vit.blocks[2].attn.qkv.weight, ref.blocks[2].attn.qkv.weight)
    torch.testing.assert_close(net.vit.pos_embed, ref.pos_embed)
    torch.testing.assert_close(net.vit.norm.weight, ref.norm.weight)


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        TimmViTHypercolumnBackbone('test_vit', pretrained=str(tmp_path / 'nope.pth'))


def test_non_vit_model_is_refused():
    with pytest.raises(ValueError, match=r"'test_resnet' is not a vision transformer.*"
                                         r"patch embedding and forward_intermediates"):
        TimmViTHypercolumnBackbone('test_resnet')


@pytest.mark.parametrize('taps', [(6,), (0, -7), ()])
def test_block_out_of_range_names_the_valid_range(taps):
    with pytest.raises(ValueError, match=r'-6\.\.5 \(the model has 6 blocks\)'):
        TimmViTHypercolumnBackbone('test_vit', taps=taps)


def test_norm_eval_has_no_effect_on_a_vit():
    net = TimmViTHypercolumnBackbone('test_vit', taps=(1,), norm_eval=True).train()
    assert all(m.training for m in net.modules())
    assert all(p.requires_grad for p in net.parameters())


def test_dinov2_config_keeps_the_flagship_grid(repo):
    """210 px with 14-px patches: the flagship's 15 x 15 grid, and the pipelines resize to 210."""
    from corrkit.registry import BACKBONES
    from corrkit.config import load_config
    cfg = load_config(repo / 'configs' / 'transformatcher_dinov2_spair.py')
    assert cfg.model.input_size == 210
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        sizes = [t['size'] for t in cfg[key].dataset.pipeline if t['type'] == 'PairResize']
        assert sizes == [210], key
    backbone = BACKBONES.build(dict(cfg.model.backbone, pretrained=False))
    assert backbone.feature_sizes(210, 210) == [(15, 15)] * 4
    assert backbone.out_channels == [384] * 4 and len(backbone.vit.blocks) == 12
