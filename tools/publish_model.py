"""Strip a training checkpoint for publishing: weights and rebuild meta, named by their hash.

Usage:
    python tools/publish_model.py CHECKPOINT OUT

CHECKPOINT is a training checkpoint or work directory (its newest checkpoint); OUT is
<folder>/<name>.pth. Writes <folder>/<name>-<sha256[:8]>.pth without the optimiser,
schedulers and run state, and prints the SHA-256 for the model index's Weights SHA256.
"""
import sys

from corrkit.cli import publish

if __name__ == '__main__':
    sys.exit(publish.main())
