"""Match two images with a corrkit matcher and draw the matches: ``corrkit match``, writing
to ``work_dirs/demo``.

Usage:
    python tools/demo.py [SRC TRG] [--model NAME | --config CONFIG] [--checkpoint CKPT]
                         [--kps FILE] [--out-dir DIR] [--device cpu|cuda]
                         [--precision fp32|bf16|fp16] [--html] [--cfg-options KEY=VALUE ...]

Without SRC and TRG, matches the bundled portraits (astronaut → Grace Hopper).
"""
import sys

from corrkit.cli import match, standalone

if __name__ == '__main__':
    sys.exit(standalone(match, defaults={'out_dir': 'work_dirs/demo'}))
