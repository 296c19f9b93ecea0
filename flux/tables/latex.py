"""What every LaTeX table shares: escaping, the template environment (LaTeX-safe delimiters: `<< var >>`,
`%% for ...` line statements; StrictUndefined, so a missing number fails the build instead of printing an empty
cell) and the scale note of captions. Table modules import it; the dispatcher (flux.tables.render) imports them.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).resolve().parent / "templates"
LATEX_SPECIALS = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}
SCALE_NOTE = {
    "micro": "micro scale: synthetic stand-ins for every dataset, a few videos each, test views capped by evaluation.max_views; "
    "the numbers are what this run produced",
    "tiny": "tiny scale (embedded default): synthetic stand-ins for every dataset, test views capped by evaluation.max_views; "
    "the numbers are what this run produced",
    "paper": "paper scale",
}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(character, character) for character in str(text))


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        variable_start_string="<<",
        variable_end_string=">>",
        block_start_string="<%",
        block_end_string="%>",
        line_statement_prefix="%%",
        comment_start_string="<#",
        comment_end_string="#>",
        keep_trailing_newline=True,
        autoescape=False,
    )
