"""Image data: 8/16-bit IO, dataset layouts, joint transforms, datasets and the demo shapes.

``gankit.data.download`` (public datasets) is imported on its own so that reading local data
never pulls in network code.
"""

from gankit.data.config import DataConfig
from gankit.data.datasets import PAIRINGS, build_dataset, parse_key
from gankit.data.image_io import IMAGE_EXTENSIONS, load_pil, read_image, save_image, to_pil
from gankit.data.lab import lab_to_model, lab_to_rgb, model_to_rgb, rgb_to_lab, rgb_to_model
from gankit.data.layouts import detect_layout, find_files
from gankit.data.scan import scan_images
from gankit.data.shapes import ShapesDataset, write_shapes_folder
from gankit.data.transforms import JointTransform

__all__ = [
    "IMAGE_EXTENSIONS",
    "PAIRINGS",
    "DataConfig",
    "JointTransform",
    "ShapesDataset",
    "build_dataset",
    "detect_layout",
    "find_files",
    "lab_to_model",
    "lab_to_rgb",
    "load_pil",
    "model_to_rgb",
    "parse_key",
    "read_image",
    "rgb_to_lab",
    "rgb_to_model",
    "save_image",
    "scan_images",
    "to_pil",
    "write_shapes_folder",
]
