"""results/tables/all.tex (every table of the configuration, and its figures, in one document) and its PDF.

The document `\\input`s the table files where they lie, so it is rebuilt only when the set of tables changes
and always shows their current content. `flux pdf` runs pdflatex twice in a scratch directory and moves the
PDF into place: a LaTeX error fails the job with pdflatex's log and leaves no half-written PDF.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from flux.errors import FluxError
from flux.io import atomic_path, atomic_write_text
from flux.provenance import latex_comment, provenance
from flux.tables.job_spec import DocumentJob, PdfJob
from flux.tables.latex import SCALE_NOTE, latex_escape

logger = logging.getLogger(__name__)

PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage[margin=1.5cm]{geometry}
\usepackage{amssymb,booktabs,longtable,multirow,graphicx,xcolor,float}
\title{FluxViT reproduction: every table and figure}
\date{}
\begin{document}
\maketitle
"""


def document_text(job: DocumentJob) -> str:
    out_dir = Path(job.out).parent
    lines = [latex_comment(provenance(job.config_digest)), PREAMBLE]
    lines.append(latex_escape(SCALE_NOTE[job.scale].capitalize()) + ".\n")
    for table in job.tables:
        relative = os.path.relpath(table, out_dir)
        lines.append(f"\\input{{{Path(relative).with_suffix('').as_posix()}}}\n\\clearpage\n")
    for figure in job.figures:
        relative = os.path.relpath(figure.path, out_dir)
        lines.append(
            "\\begin{figure}[H]\n\\centering\n"
            f"\\includegraphics[width=0.9\\linewidth]{{{Path(relative).as_posix()}}}\n"
            f"\\caption{{{latex_escape(figure.caption)}}}\n\\end{{figure}}\n"
        )
    lines.append("\\end{document}\n")
    return "\n".join(lines)


def run_document(spec: dict[str, Any]) -> None:
    """`flux document`: write all.tex."""
    job = DocumentJob.from_dict(spec)
    missing = [path for path in job.tables + [figure.path for figure in job.figures] if not Path(path).is_file()]
    if missing:
        raise FluxError(f"all.tex: {missing} do not exist; build them first (snakemake {' '.join(missing)})")
    atomic_write_text(Path(job.out), document_text(job))
    logger.info("wrote %s with %d tables and %d figures", job.out, len(job.tables), len(job.figures))


def run_pdf(spec: dict[str, Any]) -> None:
    """`flux pdf`: compile all.tex with pdflatex (two passes) into all.pdf."""
    job = PdfJob.from_dict(spec)
    source = Path(job.document)
    if shutil.which("pdflatex") is None:
        raise FluxError("pdflatex is not installed; install TeX Live (Debian: texlive-latex-base texlive-latex-extra)")
    if not source.is_file():
        raise FluxError(f"{source} does not exist; build it first (snakemake {source})")
    with tempfile.TemporaryDirectory(prefix="flux-latex-") as scratch:
        for attempt in (1, 2):
            finished = subprocess.run(
                ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"-output-directory={scratch}", source.name],
                cwd=source.parent,
                capture_output=True,
                text=True,
                check=False,
            )
            if finished.returncode != 0:
                tail = "\n".join(finished.stdout.splitlines()[-40:])
                raise FluxError(f"pdflatex failed on {source} (pass {attempt}):\n{tail}")
        built = Path(scratch) / source.with_suffix(".pdf").name
        with atomic_path(Path(job.out)) as temporary:
            shutil.copyfile(built, temporary)
    logger.info("wrote %s", job.out)
