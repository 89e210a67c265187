# The flagship recipe on DINOv2 ViT-S/14 features (Oquab et al., 2023) instead of
# ResNet-101 hypercolumns: a foundation backbone beyond the TransforMatcher paper.
# A 210x210 input gives the flagship's 15x15 grid with 14-pixel patches; correlation,
# match-to-match refiner, head (upsampling to 30^4), loss and schedule (backbone
# fine-tuned at lr 1e-5) are the flagship's.
#   python tools/train.py configs/transformatcher_dinov2_spair.py
_base_ = ['./transformatcher_spair.py']

input_size = 210  # keep equal to model.input_size; the pipelines below use it

model = dict(
    input_size=input_size,
    backbone=dict(
        _delete_=True,
        type='TimmViTHypercolumnBackbone',
        model_name='vit_small_patch14_dinov2.lvd142m',
        # four of the 12 blocks spread over the second half rather than the last four:
        # ViT features are commonly found more local in middle blocks and more
        # semantic in the last ones; the refiner's embedding weighs the 4 channels
        taps=(5, 7, 9, 11),
        pretrained=True,
        norm=True,  # final LayerNorm on each map, like DINOv2's get_intermediate_layers
    ),
)

# The dataset base's pipelines with PairResize at input_size (a base's pipelines are
# fixed when the base is read, so only their resize step is replaced here).
train_pipeline = [dict(t, size=input_size) if t['type'] == 'PairResize' else t
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, size=input_size) if t['type'] == 'PairResize' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
