"""Reports: the terminal summary and the self-contained HTML report with a timeline."""

from .html import render_html, write_html_report
from .terminal import print_summary

__all__ = ["print_summary", "render_html", "write_html_report"]
