"""``.. benchmark-results:: <stem>``: a benchmark's saved output, if any.

``benchmarks/run_all.py`` runs every ``benchmarks/<stem>.py`` and saves what
it printed to ``benchmarks/results/<stem>.txt``. This directive shows that
file verbatim, as ``literalinclude`` would; when the file does not exist yet
it says so in a sentence instead of failing the (``-W``) build. Numbers on
the benchmarks page are therefore never typed by hand.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


class BenchmarkResults(SphinxDirective):
    """Show ``benchmarks/results/<stem>.txt``, or say that it was not run."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        stem = self.arguments[0]
        path = RESULTS / f"{stem}.txt"
        # Rebuild this page when the file appears or changes.
        self.env.note_dependency(str(path))
        if not path.is_file():
            para = nodes.paragraph()
            para += nodes.Text("Not yet run: ")
            para += nodes.literal(text="python benchmarks/run_all.py")
            para += nodes.Text(" writes ")
            para += nodes.literal(text=f"benchmarks/results/{stem}.txt")
            para += nodes.Text(", which then appears here.")
            return [para]
        text = path.read_text(encoding="utf-8")
        block = nodes.literal_block(text, text, language="text")
        block.source, block.line = str(path), 1
        return [block]


def setup(app):
    app.add_directive("benchmark-results", BenchmarkResults)
    return {"version": "1.0", "parallel_read_safe": True}
