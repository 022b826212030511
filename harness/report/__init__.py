"""Reports: the live view of a running drill, the terminal summary, JSON and Markdown summaries,
and the self-contained HTML report with a timeline. All but the live view read one model
(:mod:`harness.report.model`), so they name and judge calls and attempts the same way."""

from .html import render_html, write_html_report
from .live import LiveView
from .terminal import print_summary

__all__ = ["LiveView", "print_summary", "render_html", "write_html_report"]
