"""COCO keypoints files, the exchange format of keypoint collections (reading, checking,
writing). See :mod:`corrkit.coco.keypoints`."""
from .keypoints import (CocoImage, KeypointCategory, KeypointInstance, KeypointsFile,
                        keypoints_document, read_coco_images, read_coco_keypoints)

__all__ = ['CocoImage', 'KeypointCategory', 'KeypointInstance', 'KeypointsFile',
           'keypoints_document', 'read_coco_images', 'read_coco_keypoints']
