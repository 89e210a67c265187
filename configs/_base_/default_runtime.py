# Runtime defaults shared by every config: scope, environment, logging.
default_scope = 'corrkit'

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)

# PCK reports (JSON) of validation and testing land in the work directory.
custom_hooks = [dict(type='PCKReportHook')]
