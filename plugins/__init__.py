"""Out-of-tree corrkit components, one small package each.

A config loads a plugin with ``custom_imports = dict(imports=['plugins.<name>'])``;
corrkit imports this package from beside the configs (the repository's root, or
``corrkit/.mim`` in a wheel), from any working directory.
"""
