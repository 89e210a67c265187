"""Out-of-tree corrkit components, one small package each.

A config loads a plugin with ``custom_imports = dict(imports=['plugins.<name>'])``
when run from the repository root.
"""
