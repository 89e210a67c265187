"""Every registry of corrkit, and nothing else.

``MODELS``, ``DATASETS``, ``TRANSFORMS``, ``METRICS``, ``HOOKS`` and ``FUNCTIONS`` are children of
mmengine's roots, so that ``mmengine.runner.Runner`` finds corrkit's classes
under ``default_scope='corrkit'``. The role registries (``BACKBONES``,
``CORRELATIONS``, ``REFINERS``, ``ATTENTIONS``, ``FLOW_HEADS``, ``NECKS``,
``KEYPOINT_HEADS``, ``LOSSES``) are standalone
roots: only corrkit's matchers build from them. Registration is lazy: a
registry imports its ``locations`` the first time it is searched.

An unknown ``type`` raises :class:`UnknownComponentError`, which names the
registry, the unknown name and the closest registered names; a key the
component's constructor does not take raises :class:`UnknownArgumentError`
with the closest parameter names, or with the new name of a renamed key (a
component class lists its renamed keys as ``renamed_keys = {'old': 'new'}``).
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import mmengine.registry as mmengine_registry
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry, build_from_cfg, build_model_from_cfg

from .errors import UnknownArgumentError, UnknownComponentError

__all__ = [
    'MODELS', 'DATASETS', 'TRANSFORMS', 'METRICS', 'HOOKS', 'FUNCTIONS', 'BACKBONES', 'CORRELATIONS',
    'REFINERS', 'ATTENTIONS', 'FLOW_HEADS', 'NECKS', 'KEYPOINT_HEADS', 'LOSSES', 'ALL_REGISTRIES',
    'RUNTIME_REGISTRIES',
    'UnknownComponentError', 'UnknownArgumentError', 'check_config',
]


def constructor_parameters(cls: Any) -> dict[str, inspect.Parameter]:
    """The parameters of ``cls``'s constructor; empty when they cannot be inspected."""
    try:
        return dict(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return {}


def _check_keys(cls: Any, cfg: dict) -> None:
    """Raise :class:`UnknownArgumentError` for config keys the constructor cannot take.

    A component class may declare ``renamed_keys``, a mapping from keys it took
    before a rename to their new names; a config that still uses an old key is
    told the new one.
    """
    params = constructor_parameters(cls)
    if not params or any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return
    names = [n for n, p in params.items() if p.kind != p.VAR_POSITIONAL]
    renamed = getattr(cls, 'renamed_keys', None) or {}  # declared on the component, optional
    for key in cfg:
        if key not in ('type', '_scope_') and key not in names:
            hint = (f"did you mean '{renamed[key]}'? '{key}' was renamed to '{renamed[key]}' "
                    f'(same values)' if key in renamed else None)
            raise UnknownArgumentError(cls, key, names, hint=hint)


def _check_component(registry: Registry, cfg: Any) -> None:
    """Raise for an unknown ``type`` or a key its constructor does not take."""
    obj_type = cfg.get('type') if isinstance(cfg, dict) else None
    if isinstance(obj_type, str):
        cls = registry.get(obj_type)
        if cls is None:
            raise UnknownComponentError(registry, obj_type)
        _check_keys(cls, cfg)


def _checked(build: Callable) -> Callable:
    """Wrap an mmengine build function so unknown types and keys get helpful errors."""

    def build_func(cfg: Any, *args, registry: Registry, **kwargs):
        _check_component(registry, cfg)
        return build(cfg, *args, registry=registry, **kwargs)

    return build_func


def _child(name: str, parent: Registry, build: Callable, *locations: str) -> Registry:
    return Registry(name, parent=parent, scope='corrkit', build_func=_checked(build),
                    locations=list(locations))


def _root(name: str, location: str) -> Registry:
    return Registry(name, scope='corrkit', build_func=_checked(build_from_cfg),
                    locations=[location])


MODELS = _child('model', MMENGINE_MODELS, build_model_from_cfg, 'corrkit.models')
DATASETS = _child('dataset', MMENGINE_DATASETS, build_from_cfg, 'corrkit.datasets')
TRANSFORMS = _child('transform', MMENGINE_TRANSFORMS, build_from_cfg, 'corrkit.datasets')
METRICS = _child('metric', MMENGINE_METRICS, build_from_cfg, 'corrkit.evaluation')
HOOKS = _child('hook', MMENGINE_HOOKS, build_from_cfg, 'corrkit.evaluation', 'corrkit.engine')
FUNCTIONS = _child('function', MMENGINE_FUNCTIONS, build_from_cfg, 'corrkit.datasets')

BACKBONES = _root('backbone', 'corrkit.models.backbones')
CORRELATIONS = _root('correlation', 'corrkit.models.correlation')
REFINERS = _root('refiner', 'corrkit.models.refiners')
ATTENTIONS = _root('attention', 'corrkit.layers')
FLOW_HEADS = _root('flow_head', 'corrkit.models.heads')
NECKS = _root('neck', 'corrkit.models.necks')
KEYPOINT_HEADS = _root('keypoint_head', 'corrkit.models.keypoint_heads')
LOSSES = _root('loss', 'corrkit.models.losses')

#: Every corrkit registry by name, in pipeline order.
ALL_REGISTRIES: dict[str, Registry] = {
    'backbone': BACKBONES, 'correlation': CORRELATIONS, 'refiner': REFINERS,
    'attention': ATTENTIONS, 'flow_head': FLOW_HEADS, 'neck': NECKS,
    'keypoint_head': KEYPOINT_HEADS, 'loss': LOSSES, 'model': MODELS,
    'dataset': DATASETS, 'transform': TRANSFORMS, 'metric': METRICS, 'hook': HOOKS,
    'function': FUNCTIONS,
}

#: corrkit children of the rest of mmengine's roots (loops, samplers, optimisers,
#: optimiser wrappers, visualisers, ...). The Runner builds those under the default
#: scope; with a ``corrkit`` child in each tree it finds mmengine's classes through
#: the parent without falling back (and warning). Their ``locations`` is
#: ``corrkit.engine``, which registers corrkit's runtime pieces (optimiser wrappers,
#: the atomic file backend), so a plain ``Runner.from_cfg`` finds them.
RUNTIME_REGISTRIES: dict[str, Registry] = {
    parent.name: Registry(parent.name, parent=parent, scope='corrkit',
                          locations=['corrkit.engine'])
    for parent in (getattr(mmengine_registry, name) for name in (
        'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'STRATEGIES', 'DATA_SAMPLERS',
        'EVALUATOR', 'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
        'PARAM_SCHEDULERS', 'VISUALIZERS', 'VISBACKENDS', 'LOG_PROCESSORS',
        'WEIGHT_INITIALIZERS', 'MODEL_WRAPPERS', 'INFERENCERS', 'TASK_UTILS'))
}


def check_config(cfg: Any) -> None:
    """Check the components a Runner builds from ``cfg`` before it builds them.

    mmengine's Runner builds the model, datasets, metrics and hooks through
    mmengine's root registries, whose errors name neither the closest type nor
    the key a constructor did not take. This looks each ``type`` up in corrkit's
    registries first (``model``, every ``*_dataloader.dataset``, every
    ``*_evaluator`` metric and ``custom_hooks``) and checks its keys.

    Raises:
        UnknownComponentError: For a type no registry in the tree holds.
        UnknownArgumentError: For a key the component's constructor does not take.
    """
    checks = [(MODELS, cfg.get('model'))]
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if isinstance(loader, dict):
            checks.append((DATASETS, loader.get('dataset')))
        evaluator = cfg.get(f'{split}_evaluator')
        checks += [(METRICS, metric) for metric in
                   (evaluator if isinstance(evaluator, (list, tuple)) else [evaluator])]
    checks += [(HOOKS, hook) for hook in cfg.get('custom_hooks') or []]
    for registry, component in checks:
        _check_component(registry, component)
