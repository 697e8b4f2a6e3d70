"""Pictures and pages for people: image grids, loss curves and self-contained HTML reports."""

from gankit.report.grid import image_rows, make_grid, save_grid, save_png, to_rgb
from gankit.report.html import Section, image_table, write_page
from gankit.report.plot import plot_curves

__all__ = [
    "Section",
    "image_rows",
    "image_table",
    "make_grid",
    "plot_curves",
    "save_grid",
    "save_png",
    "to_rgb",
    "write_page",
]
