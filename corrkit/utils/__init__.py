"""Helpers any layer may use, knowing nothing of corrkit's models.

Atomic writes, hashes and files inside packages (:mod:`~corrkit.utils.fileio`),
fetching, checking and unpacking files (:mod:`~corrkit.utils.download`), reading
images (:mod:`~corrkit.utils.image`) and the bundled sample photos
(:mod:`~corrkit.utils.sample_data`), text tables (:mod:`~corrkit.utils.text`) and
opt-in reduced precision and ``torch.compile`` (:mod:`~corrkit.utils.acceleration`).
Named models and their weights are :mod:`corrkit.hub`'s, configs
:mod:`corrkit.config`'s, contract checks :mod:`corrkit.layers.base`'s and
command-line helpers :mod:`corrkit.cli`'s.
"""
