"""torch.hub entry points: ``torch.hub.load(REPO_DIR, 'transformatcher_spair', source='local')``.

Every named model (``corrkit.list_models()``) is an entry point; a name below a folder
(``ablations/transformatcher_concat_spair``) becomes ``ablations_transformatcher_concat_spair``.
``pretrained=True`` loads the model index's published weights (``checkpoint='auto'``:
fetched, hash-checked, never random); ``checkpoint=`` takes a file or work directory.
``matcher(name, ...)`` takes any name or config path.
"""
dependencies = ['torch', 'torchvision', 'timm', 'mmengine', 'einops', 'yaml', 'PIL']

from corrkit.hub.model_names import list_models as _list_models  # noqa: E402


def matcher(name, pretrained=False, checkpoint=None, device='cpu', cfg_options=None):
    """A corrkit matcher by model name or config path, in eval mode.

    Args:
        name: A model name (``corrkit.list_models()``) or a config file.
        pretrained: Load the model index's published weights (``checkpoint='auto'``).
        checkpoint: A weights file or training work directory instead.
        device: Where to put the model.
        cfg_options: Dotted-key config overrides.
    """
    from corrkit.apis import init_matcher
    if pretrained and checkpoint is not None:
        raise ValueError('pass pretrained=True or a checkpoint, not both')
    return init_matcher(name, 'auto' if pretrained else checkpoint, device, cfg_options)


def _entry_point(name, description):
    def load(pretrained=False, checkpoint=None, device='cpu', cfg_options=None):
        return matcher(name, pretrained, checkpoint, device, cfg_options)
    load.__name__ = name.replace('/', '_')
    load.__doc__ = (f'{description}\n\nThe corrkit model {name!r}: see matcher() for the '
                    f'arguments.')
    return load


for _name, _description in _list_models().items():
    globals()[_name.replace('/', '_')] = _entry_point(_name, _description)
