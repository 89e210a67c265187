# Runtime defaults shared by every config: scope, environment, logging.
default_scope = 'corrkit'

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),  # progress, losses and ETA
    param_scheduler=dict(type='ParamSchedulerHook'),
    # latest checkpoint every epoch, plus the best one by validation PCK@0.1, each
    # written atomically (a temporary file renamed over the name: a kill never truncates one)
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2,
                    save_best='PCK@0.1', rule='greater', backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
# to also log to TensorBoard (pip install tensorboard), a child config sets
# visualizer = dict(vis_backends=[dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')])
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)

custom_hooks = [
    dict(type='PCKReportHook'),  # PCK reports (JSON) land in the work directory
    dict(type='SafeCheckpointHook'),  # checkpoints load with torch.load(weights_only=True)
    dict(type='EpochSeedHook'),  # per-epoch seeds: a resumed run repeats an uninterrupted one
]
