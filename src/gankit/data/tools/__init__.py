"""Dataset preparation, as the official pix2pix scripts and pix2pix-tensorflow's tools do it:
``combine`` (A|B images from two folders), ``resize`` (square images) and ``edges`` (an
edges -> photo dataset from a folder of photos). ``gankit data combine|resize|edges`` runs them.
"""

from gankit.data.tools.combine import combine_folders
from gankit.data.tools.common import ToolReport
from gankit.data.tools.edges_dataset import EdgeOptions, make_edges_dataset
from gankit.data.tools.resize import resize_folder

__all__ = ["EdgeOptions", "ToolReport", "combine_folders", "make_edges_dataset",
           "resize_folder"]
