"""Terminal tables that keep one line per row at any width (80 columns and up).

rich, left to itself, wraps a header or a cell over several lines, or drops columns,
when one long value (an error) makes a table wider than the terminal. Here every column
is as wide as its widest cell, names have a cap, one column (the error) takes what is
left, and whatever does not fit is shortened with an ellipsis. The full text is always
somewhere else (the manifest, the JSON output).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from rich import box
from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

NAME_WIDTH: Final = 20  # names (the first column) longer than this, or a quarter of the
# width if more, are shortened (…)
MIN_NAME: Final = 8  # ... and down to this when the table would not fit otherwise

Cell = str | tuple[str, str]  # text, or (text, style)


def fit_table(
    title: str | None,
    headers: Sequence[tuple[str, bool]],
    rows: Sequence[Sequence[Cell]],
    width: int,
    *,
    flex: str | None = None,
    caption: str | None = None,
) -> Group:
    """A table of one line per row within ``width`` columns.

    ``headers`` are (name, right-aligned). Every column is as wide as its widest cell;
    the first (names) at most ``NAME_WIDTH`` or a quarter of ``width`` (``MIN_NAME`` if
    the table would not fit otherwise); the ``flex`` column (an error, notes) gets what
    is left. Anything longer is shortened with an ellipsis, never wrapped. ``title`` and
    ``caption`` are lines above and below it.

    The widths are worked out here, not left to rich: rich wraps headers and cells, or
    drops columns, when a long error makes the table wider than the terminal.
    """
    names = [h for h, _ in headers]
    widths = [
        max([cell_len(h), *(cell_len(_text(r[i])) for r in rows)])
        for i, (h, _) in enumerate(headers)
    ]
    widths[0] = min(widths[0], max(NAME_WIDTH, width // 4, cell_len(names[0])))
    gaps = 2 * (len(headers) - 1)  # a column's right padding and the divider (a space)
    if flex is not None:
        i = names.index(flex)
        rest = width - gaps - sum(w for j, w in enumerate(widths) if j != i)
        widths[i] = max(cell_len(flex), min(widths[i], rest))
    over = gaps + sum(widths) - width
    if over > 0:  # still too wide: names give way first, down to a few characters
        widths[0] = max(min(widths[0], MIN_NAME), widths[0] - over)
    t = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
        pad_edge=False,
        collapse_padding=True,
    )
    for (name, right), w in zip(headers, widths, strict=True):
        t.add_column(
            name, justify="right" if right else "left", no_wrap=True, overflow="ellipsis", width=w
        )
    for r in rows:
        t.add_row(*(Text(c) if isinstance(c, str) else Text(c[0], style=c[1]) for c in r))
    # the title and the caption are lines of their own, as wide as the terminal (a
    # table's own title would be cut at the table's width)
    lines: list[RenderableType] = [] if title is None else [line(title)]
    lines.append(t)
    if caption is not None:
        lines.append(line(caption))
    return Group(*lines)


def line(text: str) -> Text:
    """One line of text, shortened with an ellipsis if the terminal is narrower."""
    return Text(text, no_wrap=True, overflow="ellipsis")


def _text(c: Cell) -> str:
    return c if isinstance(c, str) else c[0]
