"""Tables for the terminal, where every cell is data.

SMS texts, numbers and names come from outside (any sender can write ``[/]``), so no cell is
read as Rich markup: ``[a]`` would vanish and ``[/]`` raise ``MarkupError``. Each cell is a
``rich.text.Text``, which Rich prints as it is, without markup, emoji codes or highlighting.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Column, Table
from rich.text import Text


def print_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Print rows under column titles, every cell as plain text."""
    table = Table(*(Column(header=Text(title)) for title in columns))
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    Console().print(table)
