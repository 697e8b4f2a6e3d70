"""Dataset preparation, as the official pix2pix scripts and pix2pix-tensorflow's tools do it:
``combine`` (A|B images from two folders), ``resize`` (square images), ``edges`` (an
edges -> photo dataset from a folder of photos) and ``blend`` (digits on crops of photos, the
MNIST-M recipe). ``gankit data combine|resize|edges|blend`` runs them.
"""

from gankit.data.tools.blend import blend_digits
from gankit.data.tools.combine import combine_folders
from gankit.data.tools.common import ToolReport
from gankit.data.tools.edges_dataset import EdgeOptions, make_edges_dataset
from gankit.data.tools.resize import resize_folder

__all__ = ["EdgeOptions", "ToolReport", "blend_digits", "combine_folders",
           "make_edges_dataset", "resize_folder"]
