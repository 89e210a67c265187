# TransforMatcher (Kim, Min, Cho, CVPR 2022): ImageNet ResNet-101 hypercolumns
# (every bottleneck of conv4_x and conv5_x: 26 maps), multi-channel cosine
# correlation on the 15x15 grid of a 240x240 input, 6 blocks of match-to-match
# additive attention with 4D rotary embedding, kernel soft-argmax on 30^4.
model = dict(
    type='CorrelationMatcher',
    input_size=240,
    backbone=dict(
        type='TimmHypercolumnBackbone',
        model_name='resnet101.tv_in1k',  # torchvision's ImageNet weights, as in the paper
        taps=(3, 4),  # stages conv4_x and conv5_x: every block of each
        pretrained=True,
    ),
    correlation=dict(type='MultiChannelCorrelation'),
    refiner=dict(
        type='MatchToMatchRefiner',
        embed_dims=16,
        depth=6,
        num_heads=8,
        head_dims=4,
        mlp_ratio=4.0,
        attention=dict(type='AdditiveAttention'),  # or any ATTENTIONS entry (Table 3)
        position='rope',  # 'absolute' or 'none' (Table 2)
    ),
    head=dict(type='KernelSoftArgmaxHead', upsample_factor=2, sigma=10.0, temperature=1.0),
    loss=dict(type='KeypointL2Loss'),
    train_tau=0.1,
    test_tau=0.05,
)
