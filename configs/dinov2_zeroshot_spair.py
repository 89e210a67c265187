# Zero-shot matching on DINOv2 features: what to run first on your own images. A frozen
# DINOv2 ViT-B/14 (Oquab et al., 2023) at 840 px gives a 60x60 grid of patch tokens; each
# source keypoint's token is compared with every target token (memory K * 60 * 60 scores,
# never the 60^4 of a 4D correlation), the nearest neighbour is refined by a window
# soft-argmax, and pose alignment matches a flipped source too and keeps the better one.
# This is the DINOv2 half of GeoAware-SC's zero-shot recipe (Zhang et al., CVPR 2024),
# without its Stable Diffusion features. No trained parameters; the weights come from the
# Hugging Face hub through timm (offline: model.backbone.pretrained=/path/to/file).
#   python tools/test.py configs/dinov2_zeroshot_spair.py
_base_ = ['./_base_/datasets/spair.py', './_base_/default_runtime.py']

# 840 = 60 patches of 14 px: GeoAware-SC's resolution for DINOv2 (and their 60x60 grid)
input_size = 840  # keep equal to model.input_size; the pipelines below use it

model = dict(
    type='KeypointMatcher',
    input_size=input_size,
    backbone=dict(
        type='TimmViTHypercolumnBackbone',
        model_name='vit_base_patch14_dinov2.lvd142m',
        # the last block's tokens, GeoAware-SC's DINOv2 descriptor (768 channels of
        # ViT-B/14's 12th block); deeper tokens are the more semantic ones
        taps=(-1, ),
        pretrained=True,
        norm=True,  # final LayerNorm, as DINOv2's own forward_features returns its tokens
        freeze=True,
    ),
    # window soft-argmax around the nearest neighbour (GeoAware-SC's evaluation refinement;
    # the head's defaults are their window and SFNet's temperature)
    head=dict(type='WindowSoftArgmaxHead'),
    # test-time pose alignment by flipping the source (GeoAware-SC's adaptive flip)
    pose_alignment=True,
    loss=dict(type='KeypointCrossEntropyLoss'),
)

# The dataset base's pipelines with PairResize at input_size, keeping each image's aspect
# ratio (longer side = input_size, padded), as GeoAware-SC does (a base's pipelines are
# fixed when the base is read, so only their resize step is replaced here).
train_pipeline = [dict(t, size=input_size, keep_ratio=True) if t['type'] == 'PairResize'
                  else t for t in _base_.train_pipeline]
test_pipeline = [dict(t, size=input_size, keep_ratio=True) if t['type'] == 'PairResize'
                 else t for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
# Protocol: PCK in the original images (the SPair-71k authors' and GeoAware-SC's), bbox
# threshold (max side of the target object box), per pair.
val_evaluator = dict(frame='original')
test_evaluator = dict(frame='original')
