"""Weights files from the model index, fetched into torch.hub's or Hugging Face's cache and checked.

A file is looked up in its cache first (no network), then fetched; either way
its SHA-256 is checked before anything loads it; a file whose SHA-256 the index does
not pin is *unverified* and warns when it is fetched for loading (naming the file and
how to pin it). Nothing falls back to random
weights: a file that cannot be fetched or does not match is a
:class:`~corrkit.errors.WeightsError` naming the URL, the expected file and the
cache path, and a mismatching file in the cache is left where it is for the user
to look at.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

from ..errors import ChecksumError, DownloadError, WeightsError
from ..utils.download import download_file, print_progress, verify_file
from ..utils.text import first_line
from .model_index import WeightsFile

__all__ = ['cache_path', 'fetch_weights', 'weights_status']


def _hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read at call time (the library reads it at import)."""
    from huggingface_hub import constants
    return Path(os.environ.get('HF_HUB_CACHE') or constants.HF_HUB_CACHE)


def cache_path(weights: WeightsFile) -> Path:
    """Where the file lives once fetched.

    For torch.hub's cache, ``$TORCH_HOME/hub/checkpoints/<file>``; for Hugging
    Face's, the cached snapshot file if present, else the repository's cache folder.
    """
    hf = weights.hf_repo
    if hf is None:
        import torch
        return Path(torch.hub.get_dir()) / 'checkpoints' / weights.filename
    repo_id, revision, filename = hf
    from huggingface_hub import try_to_load_from_cache
    found = try_to_load_from_cache(repo_id, filename, cache_dir=_hf_cache_dir(), revision=revision)
    if isinstance(found, str):
        return Path(found)
    return _hf_cache_dir() / f"models--{repo_id.replace('/', '--')}"


def weights_status(weights: WeightsFile) -> str:
    """One line: the file, its URL and whether the cache holds it (no network, no hashing)."""
    path = cache_path(weights)
    state = 'in the cache' if path.is_file() else 'not in the cache'
    return f'{weights.filename} from {weights.url} ({state}: {path})'


def _check(path: Path, weights: WeightsFile) -> Path:
    """Raise unless ``path`` hashes to the pinned SHA-256, or (unpinned, Hugging Face) to
    the digest its cache blob is named after."""
    expected = weights.sha256
    if expected is None and weights.hf_repo is not None:
        blob = Path(os.path.realpath(path)).name
        expected = blob if len(blob) == 64 else None  # LFS blobs are named by their SHA-256
    try:
        return verify_file(path, expected, label=f"the cached {weights.filename} at '{path}'")
    except ChecksumError as err:
        raise WeightsError(f'{err} ({weights.url}); it is corrupt or another file: delete it '
                           f'to fetch it again, or put the right file there') from err


def fetch_weights(weights: WeightsFile, progress: bool = True) -> Path:
    """A checked local copy of a weights file, fetched into its cache if missing.

    Args:
        weights: The file (URL and expected SHA-256).
        progress: Print download progress.

    Returns:
        The path of the checked file in the cache.

    Raises:
        WeightsError: If the file cannot be fetched (for instance offline) or its
            hash differs (then raised from a :class:`~corrkit.errors.ChecksumError`);
            the message names the URL, the file and the cache path.

    Warns:
        UserWarning: If the index pins no SHA-256 for the file (it is unverified):
            the warning names the file, its URL and cache path and how to pin it.
    """
    path = cache_path(weights)
    if path.is_file():
        return _warn_unverified(_check(path, weights), weights)
    hf = weights.hf_repo
    try:
        if hf is None:
            path = download_file(weights.url, path, weights.sha256,
                                 progress=print_progress if progress else None)
        else:
            from huggingface_hub import hf_hub_download
            repo_id, revision, filename = hf
            path = Path(hf_hub_download(repo_id, filename, revision=revision,
                                        cache_dir=_hf_cache_dir()))
    except ChecksumError as err:  # it came, whole, and is another file
        raise WeightsError(f'{weights.filename} downloaded from {weights.url} does not match '
                           f'the index ({first_line(err)}); nothing was written to '
                           f"'{path}'. The published file may have changed: report it") from err
    except DownloadError as err:
        raise _fetch_error(weights, path, err) from err
    except (OSError, ValueError) as err:  # the hub's errors derive from these
        raise _fetch_error(weights, path, err) from err
    return _warn_unverified(_check(path, weights), weights)


def _warn_unverified(path: Path, weights: WeightsFile) -> Path:
    """``path``, after a warning if the index pins no SHA-256 for the file."""
    if not weights.verified:
        checked = (" (only the Hugging Face cache's own blob digest was checked)"
                   if weights.hf_repo is not None else ' (nothing was checked)')
        warnings.warn(f"corrkit: loading '{path}'{checked}: {weights.unverified_note}",
                      UserWarning, stacklevel=3)
    return path


def _fetch_error(weights: WeightsFile, path: Path, err: Exception) -> WeightsError:
    """The error for a file that could not be fetched: URL, file, cache path, what to do."""
    hf = weights.hf_repo
    if hf is None:
        fix = f"copy the file (sha256 {weights.sha256 or 'not pinned'}) to '{path}'"
    else:
        fix = (f"on a connected machine run `hf download {hf[0]} {hf[2]}` and copy the "
               f"cache folder '{path}' here (HF_HUB_CACHE)")
    return WeightsError(f'could not fetch {weights.filename} from {weights.url} '
                        f'({first_line(err)}); offline? {fix}')

