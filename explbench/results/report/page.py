"""Assemble the report's single self-contained HTML page.

Every user-given name (explainers, task, suite, run id, case ids, notes quoting them) passes
through :func:`html.escape`; figures and audio are inline data URIs; there is no script, font,
stylesheet or image from anywhere else.
"""

from __future__ import annotations

import html
import json

import pandas as pd

from explbench.results.render import HEATMAP_CSS
from explbench.results.report.cases import CaseView

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1250px;
 color:#222;line-height:1.4}
h1{margin-bottom:0}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:3px 6px;
 text-align:left;vertical-align:top}th{background:#f3f3f3}tr.oracle td{color:#777;font-style:italic}
.meta td:first-child{font-weight:600;white-space:nowrap}.note{color:#8a5a00;font-size:13px}
.case{border:1px solid #ddd;border-radius:6px;padding:10px;margin:14px 0}
.players{display:flex;flex-wrap:wrap;gap:12px}.player{font-size:12px}.player audio{display:block;width:280px}
img{max-width:100%}.scroll{overflow-x:auto}code{font-size:12px}dt{font-weight:600;margin-top:6px}
""" + HEATMAP_CSS


def esc(value: object) -> str:
    """HTML-escaped text of any value."""
    return html.escape(str(value), quote=True)


def meta_table(items: list[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in items)
    return f'<table class="meta">{rows}</table>'


def data_table(table: pd.DataFrame, cls: str = "data") -> str:
    """Any DataFrame as an HTML table, every header and cell escaped."""
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in r) + "</tr>"
                   for r in table.itertuples(index=False))
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def section(title: str, body_html: str, intro: str | None = None) -> str:
    """A titled section; ``body_html`` is already safe HTML, ``intro`` plain text."""
    lead = f"<p>{esc(intro)}</p>" if intro else ""
    return f"<h2>{esc(title)}</h2>{lead}{body_html}"


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def definitions(items: list[tuple[str, str]]) -> str:
    """A definition list from plain-text (term, definition) pairs."""
    return "<dl>" + "".join(f"<dt>{esc(t)}</dt><dd>{esc(d)}</dd>" for t, d in items) + "</dl>"


def figure(title: str, uri: str | None, caption: str, missing: str) -> str:
    """A section with one inline PNG, or a note when the figure could not be drawn."""
    body = (f'<img src="{uri}" alt="{esc(title)}"><p>{esc(caption)}</p>' if uri
            else note(missing))
    return f"<h2>{esc(title)}</h2>{body}"


def case_block(v: CaseView) -> str:
    players = "".join(
        f'<div class="player">{esc(cap)}<audio controls preload="metadata" src="{uri}"></audio></div>'
        for cap, uri in v.audio)
    notes = "".join(note(n) for n in v.notes)
    return (f'<div class="case"><h3>{esc(v.title)}</h3><img src="{v.image}" alt="{esc(v.case_id)}">'
            f'<div class="players">{players}</div>{notes}</div>')


def page(*, title: str, header: list[tuple[str, object]], provenance: dict, sections: list[str],
         cases: list[CaseView], notes: list[str]) -> str:
    """The whole HTML document.

    Parameters
    ----------
    title : str
        Plain text (escaped here).
    header : list of (key, value)
        Run facts shown at the top (plain text).
    provenance : dict
        Shown as compact JSON (escaped).
    sections : list of str
        Safe HTML sections (made with :func:`section`, :func:`figure`, ...), in order.
    cases : list of CaseView
    notes : list of str
        Plain-text notes about anything left out (shown with the per-case views).
    """
    note_html = "".join(note(n) for n in notes)
    case_html = "".join(case_block(v) for v in cases) or \
        note("No per-case views: no cases could be loaded (see the notes above).")
    prov = esc(json.dumps(provenance, indent=1, sort_keys=True, default=str))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1>{meta_table(header)}"
        f"<details><summary>full provenance</summary><pre>{prov}</pre></details>"
        + "".join(sections)
        + "<h2>Per-case views</h2><p>The explained (modified) log-mel input, with each explainer's "
        "top-k segments outlined and the true cause overlaid. Listen to the original, the modified "
        "excerpt, the true cause and each explanation: the original with only the chosen segments "
        f"kept.</p>{note_html}{case_html}"
        "</body></html>\n"
    )
