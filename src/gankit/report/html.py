"""Self-contained HTML pages: one file with inline CSS, no scripts, readable on a phone.

Every piece of text goes through ``html.escape``: captions and titles come from file names and
user options, which may hold ``<`` or ``&``.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from urllib.parse import quote

from gankit.atomic import write_bytes_atomic

Table = tuple[Sequence[str], Sequence[Sequence[object]]]

_CSS = """
:root { color-scheme: light; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
  background: #fff; margin: 0 auto; max-width: 1100px; padding: 12px 16px 40px; }
h1 { font-size: 1.6em; margin: 0.4em 0 0.6em; }
h2 { font-size: 1.25em; margin: 1.6em 0 0.4em; border-bottom: 1px solid #ddd; }
p { margin: 0.4em 0; overflow-wrap: anywhere; }
img { max-width: 100%; height: auto; }
figure { display: inline-block; margin: 8px 12px 8px 0; vertical-align: top; max-width: 100%; }
figcaption, .name { font-size: 0.85em; color: #555; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
table.images td { text-align: center; }
table.images img { min-width: 96px; }
"""


@dataclass
class Section:
    """A heading with optional text, figures and one table.

    ``images`` are (path, caption) pairs; a path relative to the page stays as it is, an
    absolute one is made relative to the page's folder. ``table`` is (headers, rows). In
    ``text``, a blank line starts a paragraph and a single newline breaks the line.
    """

    heading: str
    text: str = ""
    images: Sequence[tuple[str | PurePath, str]] = field(default_factory=list)
    table: Table | None = None


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _src(image: str | PurePath, page: Path) -> str:
    """A URL for ``image`` relative to the page, percent-encoded, ready for an attribute."""
    path = Path(image)
    rel = os.path.relpath(path, page.parent) if path.is_absolute() else str(image)
    return _e(quote(Path(rel).as_posix(), safe="/"))


def _paragraphs(text: str) -> str:
    blocks = [b.strip() for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    return "\n".join(
        "<p>" + "<br>\n".join(_e(line) for line in b.split("\n")) + "</p>" for b in blocks
    )


def _table(headers: Sequence[object], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody></table></div>"
    )


def _document(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{_e(title)}</h1>\n{body}\n</body>\n</html>\n"
    )


def _write(path: Path, text: str) -> Path:
    write_bytes_atomic(path, text.encode("utf-8"))
    return path


def write_page(path: str | Path, title: str, sections: Sequence[Section]) -> Path:
    """Write a page of ``sections`` to ``path`` atomically and return the path."""
    path = Path(path)
    parts: list[str] = []
    for section in sections:
        parts.append(f"<section>\n<h2>{_e(section.heading)}</h2>")
        if section.text:
            parts.append(_paragraphs(section.text))
        for image, caption in section.images:
            src = _src(image, path)
            cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
            parts.append(
                f'<figure><a href="{src}"><img src="{src}" alt="{_e(caption)}"></a>{cap}</figure>'
            )
        if section.table is not None:
            headers, rows = section.table
            parts.append(_table(headers, rows))
        parts.append("</section>")
    return _write(path, _document(title, "\n".join(parts)))


def image_table(
    path: str | Path, title: str, rows: Sequence[dict[str, str]], columns: Sequence[str]
) -> Path:
    """Write a page with one row per item and one image per column (e.g. input | output).

    Each cell shows the image (linked to itself) with its file name under it; a row without
    a given column gets an empty cell.
    """
    path = Path(path)
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body: list[str] = []
    for row in rows:
        cells = []
        for column in columns:
            image = row.get(column)
            if not image:
                cells.append("<td></td>")
                continue
            src = _src(image, path)
            name = PurePath(str(image)).name
            cells.append(
                f'<td><a href="{src}"><img src="{src}" alt="{_e(column)}: {_e(name)}"></a>'
                f'<div class="name">{_e(name)}</div></td>'
            )
        body.append("<tr>" + "".join(cells) + "</tr>")
    table = (
        f'<div class="scroll"><table class="images">\n<thead><tr>{head}</tr></thead>\n'
        "<tbody>\n" + "\n".join(body) + "\n</tbody></table></div>"
    )
    summary = f"<p>{len(rows)} image{'s' if len(rows) != 1 else ''}.</p>"
    return _write(path, _document(title, summary + "\n" + table))
