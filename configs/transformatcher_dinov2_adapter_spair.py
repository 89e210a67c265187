# TransforMatcher's match-to-match refiner on adapted DINOv2 ViT-S/14 features: a
# learned aggregation neck (per-map projections, learned map weights, residual blocks;
# in the spirit of GeoAware-SC's post-processor, Zhang et al., CVPR 2024) merges the
# four tapped blocks into one map before the correlation, so the refiner reads one
# cosine channel of adapted features instead of four raw ones.
#   python tools/train.py configs/transformatcher_dinov2_adapter_spair.py
_base_ = ['./transformatcher_dinov2_spair.py']

model = dict(
    # frozen like the foundation models of GeoAware-SC: the adapter replaces fine-tuning,
    # and no backbone gradients are computed; the neck and refiner train at lr 1e-3
    backbone=dict(freeze=True),
    neck=dict(
        type='AggregationNeck',
        # ViT-S's own width: square orthogonal projections keep each map's cosine
        # similarities at the start, so the untrained adapter matches like the frozen maps
        out_channels=384,
        num_blocks=2,  # a few residual blocks keep the adapter small (about 0.9 M weights)
        # no upsampling: the refiner's cost grows with the 4th power of the grid side, and
        # the head already upsamples the 15x15 grid's correlation to 30^4
        upsample=1,
    ),
)
