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
from rich.table import Table
from rich.text import Text

NAME_WIDTH: Final = 20  # names (the first column) longer than this are shortened (…)
MIN_NAME: Final = 8  # ... and down to this when the table would not fit otherwise

Cell = str | tuple[str, str]  # text, or (text, style)


def fit_table(
    title: str | None,
    headers: Sequence[tuple[str, bool]],
    rows: Sequence[Sequence[Cell]],
    width: int,
    *,
    flex: str | None = None,
) -> Table:
    """A table of one line per row within ``width`` columns.

    ``headers`` are (name, right-aligned). Every column is as wide as its widest cell, the
    first (names) at most ``NAME_WIDTH`` (``MIN_NAME`` if the table would not fit
    otherwise), and the ``flex`` column (an error, notes) gets what is left. Anything
    longer is shortened with an ellipsis, never wrapped.

    The widths are worked out here, not left to rich: rich wraps headers and cells, or
    drops columns, when a long error makes the table wider than the terminal.
    """
    names = [h for h, _ in headers]
    widths = [
        max([cell_len(h), *(cell_len(_text(r[i])) for r in rows)])
        for i, (h, _) in enumerate(headers)
    ]
    widths[0] = min(widths[0], max(NAME_WIDTH, cell_len(names[0])))
    gaps = 2 * (len(headers) - 1)  # a column's right padding and the divider (a space)
    if flex is not None:
        i = names.index(flex)
        rest = width - gaps - sum(w for j, w in enumerate(widths) if j != i)
        widths[i] = max(cell_len(flex), min(widths[i], rest))
    over = gaps + sum(widths) - width
    if over > 0:  # still too wide: names give way first, down to a few characters
        widths[0] = max(min(widths[0], MIN_NAME), widths[0] - over)
    t = Table(
        title=Text(title, no_wrap=True, overflow="ellipsis") if title else None,
        title_justify="left",
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
    return t


def _text(c: Cell) -> str:
    return c if isinstance(c, str) else c[0]
