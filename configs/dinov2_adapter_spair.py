# A trained adapter on frozen DINOv2 features: the zero-shot recipe of
# dinov2_zeroshot_spair.py plus an AggregationNeck (GeoAware-SC's post-processor, Zhang et
# al., CVPR 2024, in corrkit's form) trained with a keypoint cross-entropy on SPair-71k's
# trn split, on the adapter schedule. Hyper-parameters are GeoAware-SC's where corrkit
# has the same knob (their values: the paper and the defaults of pck_train.py in their
# public code); where corrkit differs, the comment says so.
#   python tools/train.py configs/dinov2_adapter_spair.py
#   python tools/test.py configs/dinov2_adapter_spair.py --checkpoint WORK_DIR/best_*.pth
_base_ = ['./dinov2_zeroshot_spair.py', './_base_/schedules/adapter_adamw.py']

model = dict(
    neck=dict(
        type='AggregationNeck',
        # projection width 768 (GeoAware-SC's PROJ_DIM); with ViT-B's 768 channels the
        # orthogonal projection is square, so the untrained adapter matches like the
        # frozen tokens
        out_channels=768,
        # GeoAware-SC's post-processor is a few bottleneck blocks per feature; one map
        # here (the last block's tokens), so two blocks keep it small
        num_blocks=2,
        # no upsampling: the 60x60 grid is GeoAware-SC's (60 = 840 / 14)
        upsample=1,
    ),
    loss=dict(
        type='KeypointCrossEntropyLoss',
        # GeoAware-SC's sparse loss is a CLIP-style symmetric cross-entropy between the
        # keypoints' descriptors with a learned logit scale, plus a dense term (the
        # end-point error of a soft-argmax flow, weight 1) and flip augmentations. Here: a
        # cross-entropy of each source keypoint over all target cells (the dense
        # counterpart of their sparse term) at the head's fixed temperature 0.02 (SFNet's
        # beta, which their window soft-argmax uses), so training sharpens what the head
        # reads; their flip-augmented terms are not reproduced.
        temperature=0.02,
        distribution='gaussian',
        sigma=1.0,  # about one 14-px patch: the 3x3 neighbourhood of the true cell
    ),
)

# GeoAware-SC trains at batch 1 (one pair per step; lr 1.25e-3, AdamW with weight decay
# 1e-3, one epoch over the trn split: the adapter schedule). Batch 8 here: at 840 px a
# frozen ViT-B forward dominates a step, and batching uses the accelerator better; the
# lr is kept (their code does not scale it with the batch).
train_dataloader = dict(batch_size=8)
val_dataloader = dict(batch_size=8)
test_dataloader = dict(batch_size=8)
