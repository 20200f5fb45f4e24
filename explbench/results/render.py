"""A board rendered: Markdown (with forest-plot PNGs beside it), CSV, and a self-contained HTML
page with the headline, the forest plots, the details and the pairwise heat maps.

Every name a user chooses (explainers, run ids, generators, folders) is escaped: in Markdown
cells by :func:`_md_cell`, in code spans by :func:`_md_code`, in HTML by :func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np
import pandas as pd

from explbench.results.board import Board, describe, headline_text
from explbench.store.run_store import safe_name
from explbench.results.compat import show
from explbench.results.forest import forest_plot
from explbench.results.headline import forest_rows
from explbench.results.ranking import HEADLINE_K, Ranking

#: output formats of :func:`write`, by file suffix
FORMATS = ("md", "csv", "html")


def _md_cell(value: object) -> str:
    """A Markdown table cell: pipes, backslashes and line breaks escaped, HTML neutralised."""
    s = str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return html.escape(s, quote=False)


def to_markdown(table: pd.DataFrame) -> str:
    """A Markdown table with every cell escaped."""
    cols = list(table.columns)
    out = ["| " + " | ".join(_md_cell(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in table.iterrows():
        out.append("| " + " | ".join(_md_cell(r[c]) for c in cols) + " |")
    return "\n".join(out)


def _md_code(value: object) -> str:
    """A Markdown code span; backticks inside become quotes (a code span shows HTML as text)."""
    return "`" + str(value).replace("`", "'").replace("\n", " ") + "`"


def forest_name(board: Board, generator: str) -> str:
    """File name of a generator's forest plot: ``<stem>-forest-<generator>.png``."""
    return f"{board.stem()}-forest-{safe_name(generator)}.png"


def forest_title(board: Board, generator: str) -> str:
    return f"{board.task}: FR({HEADLINE_K}) on {generator}, 95 % intervals"


def forest_caption(generator: str) -> str:
    return (f"FR({HEADLINE_K}) on {generator}: each explainer's flip rate (point) and 95 % "
            f"interval (line), highest on top; random (floor) and the oracles (ceiling) as "
            f"references, with a dotted line at their values; merged rows are identical "
            f"explainers.")


def forest_pngs(board: Board) -> dict[str, bytes]:
    """Attack generator → its forest plot as PNG bytes (the same board gives the same bytes)."""
    metrics, oracles = board.metrics(), board.oracles()
    out = {}
    for g in board.generators:
        rows = forest_rows(metrics, board.groups, g, oracles)
        if rows:
            out[g] = forest_plot(rows, forest_title(board, g))
    return out


def headline_md(board: Board) -> str:
    """The headline table alone, in Markdown (the terminal view of ``explbench leaderboard``)."""
    return to_markdown(board.headline_table) + "\n"


def to_md(board: Board, pngs: dict[str, bytes] | None = None) -> str:
    """Markdown: header (configuration, runs, power), the headline table, a forest plot per
    attack generator (relative links to :func:`forest_name`), then the rules and the details.

    Parameters
    ----------
    board : Board
    pngs : dict, optional
        The forest plots that exist (default: :func:`forest_pngs`); only these are linked.
    """
    info = describe(board)
    cfg = info["config"]
    pngs = forest_pngs(board) if pngs is None else pngs
    lines = [f"# Leaderboard: {_md_cell(info['task'])}", "",
             "**Configuration:** " + ", ".join(f"{_md_cell(k)} = {_md_code(show(v))}"
                                               for k, v in cfg.items()), "",
             "**Runs used** (each explainer's numbers come from the newest run that holds it):", ""]
    for u in info["runs"]:
        cases = ", ".join(f"{_md_cell(g)}: {n}" for g, n in u["cases"].items())
        lines.append(f"- {_md_code(u['run_id'])}: {_md_cell(', '.join(u['explainers']))} (cases {cases})")
    lines += ["", f"**{_md_cell(info['power'])}**", ""]
    for key in ("unpaired", "untested"):
        if info[key]:
            lines += [f"**{_md_cell(info[key])}**", ""]
    lines += ["## Headline", "", _md_cell(headline_text(board)), "", to_markdown(board.headline_table), ""]
    if pngs:
        lines += [f"## FR({HEADLINE_K}) per attack generator", ""]
        for g in pngs:
            alt = _md_cell(forest_title(board, g)).replace("[", "\\[").replace("]", "\\]")
            lines += [f"![{alt}]({forest_name(board, g)})", "", _md_cell(forest_caption(g)), ""]
    lines += ["## Details", "", _md_cell(info["rule"]), "", to_markdown(board.table), ""]
    return "\n".join(lines)


def to_html_table(table: pd.DataFrame, cls: str = "leaderboard") -> str:
    """An HTML ``<table class="{cls}">`` with every cell escaped; oracle rows get
    ``class="oracle"``."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = []
    for _, r in table.iterrows():
        row_cls = ' class="oracle"' if str(r.iloc[0]) == "oracle" else ""
        body.append(f"<tr{row_cls}>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>")
    return f'<table class="{html.escape(cls, quote=True)}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _colour(effect: float, limit: float = 0.5) -> str:
    """Diverging background: blue when the row explainer flips more, red when less."""
    if not np.isfinite(effect):
        return "#f4f4f4"
    t = max(-1.0, min(1.0, effect / limit))
    if t >= 0:
        r, g, b = (int(255 - t * (255 - c)) for c in (49, 130, 189))
    else:
        r, g, b = (int(255 + t * (255 - c)) for c in (222, 45, 38))
    return f"#{r:02x}{g:02x}{b:02x}"


def _p_text(p: float) -> str:
    if not np.isfinite(p):
        return "p –"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def heatmap_html(ranking: Ranking) -> str:
    """The pairwise matrix of one attack generator as an HTML heat map.

    Cell (row r, column c): the difference FR(r) − FR(c) on the cases both explained (colour:
    blue = r flips more, red = fewer, saturating at ±0.5) and the Holm-adjusted p-value; cells
    whose difference is significant are bold and outlined; "u" marks an unpaired comparison.
    Every name is escaped.
    """
    eff, pad = ranking.matrix()
    if eff.empty:
        return '<p class="note">No explainers to compare.</p>'
    names = list(eff.index)
    head = "".join(f'<th class="col">{html.escape(c)}</th>' for c in names)
    rows = []
    for r in names:
        cells = []
        for c in names:
            if r == c:
                cells.append('<td class="diag"></td>')
                continue
            t = ranking.test(r, c)
            e, p = float(eff.loc[r, c]), float(pad.loc[r, c])
            sig = t is not None and t.significant(ranking.alpha)
            unpaired = t is not None and not t.paired
            style = f"background:{_colour(e)}" + (";outline:2px solid #222;font-weight:700" if sig else "")
            title = html.escape(f"{r} vs {c}: FR difference {e:+.2f}, Holm-adjusted {_p_text(p)}, "
                                f"{t.test if t else ''}, n = {t.n if t else 0}", quote=True)
            eff_text = "–" if not np.isfinite(e) else f"{e:+.2f}"
            cells.append(f'<td style="{style}" title="{title}">{eff_text}<br>'
                         f'<small>{html.escape(_p_text(p))}{" u" if unpaired else ""}</small></td>')
        rows.append(f'<tr><th class="row">{html.escape(r)} ({html.escape(ranking.label(r))})</th>'
                    + "".join(cells) + "</tr>")
    return (f'<table class="heatmap" data-generator="{html.escape(ranking.generator, quote=True)}">'
            f'<thead><tr><th>row − column</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


HEATMAP_CSS = (".heatmap td,.heatmap th{border:1px solid #ddd;padding:3px 5px;font-size:11px;"
               "text-align:center;min-width:52px}.heatmap th.row{text-align:right;white-space:nowrap}"
               ".heatmap th.col{writing-mode:vertical-rl;transform:rotate(180deg);max-height:160px}"
               ".heatmap td.diag{background:#ccc}")


def heatmap_caption(ranking: Ranking) -> str:
    return (f"Pairwise FR({HEADLINE_K}) on {ranking.generator}: each cell is the row explainer's flip "
            f"rate minus the column explainer's on the cases both explained (blue: the row flips "
            f"more; red: fewer), with the Holm-adjusted p-value of the paired test. Bold outlined "
            f"cells differ significantly (adjusted p < {ranking.alpha}); 'u' marks an unpaired "
            f"comparison (different cases). Rows are ordered by rank, shown in brackets.")


PAGE_CSS = ("body{font-family:sans-serif;margin:1.5em;max-width:1400px}"
            ".leaderboard{border-collapse:collapse;font-size:13px}"
            ".leaderboard td,.leaderboard th{border:1px solid #ddd;padding:3px 6px;text-align:left}"
            ".leaderboard th{background:#f4f4f4}.leaderboard tr.oracle{color:#8a3b38}"
            ".scroll{overflow-x:auto}figure{margin:1em 0}figcaption{font-size:13px;color:#444}"
            "img.forest{max-width:100%;height:auto}.headline td{white-space:nowrap}")


def _png_uri(png: bytes) -> str:
    """PNG bytes as a ``data:image/png;base64,…`` URI (the very bytes of the PNG file)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def to_html(board: Board, pngs: dict[str, bytes] | None = None) -> str:
    """A standalone HTML page (no external resources): header, headline, forest plots (data
    URIs), rules, details and heat maps; every name escaped."""
    info = describe(board)
    e = html.escape
    pngs = forest_pngs(board) if pngs is None else pngs
    runs_html = "".join(f"<li><code>{e(u['run_id'])}</code>: {e(', '.join(u['explainers']))}</li>"
                        for u in info["runs"])
    cfg = ", ".join(f"{e(k)} = {e(show(v))}" for k, v in info["config"].items())
    forests = "".join(
        f'<figure><img class="forest" src="{_png_uri(png)}" alt="{e(forest_title(board, g), quote=True)}">'
        f"<figcaption>{e(forest_caption(g))}</figcaption></figure>" for g, png in pngs.items())
    maps = "".join(f"<h2>Pairwise tests: {e(g)}</h2><p>{e(heatmap_caption(r))}</p>"
                   f'<div class="scroll">{heatmap_html(r)}</div>' for g, r in board.rankings.items())
    unpaired = "".join(f"<p><b>{e(str(info[k]))}</b></p>" for k in ("unpaired", "untested") if info[k])
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Leaderboard: {e(info['task'])}</title>"
            f"<style>{PAGE_CSS}{HEATMAP_CSS}</style></head><body>"
            f"<h1>Leaderboard: {e(info['task'])}</h1><p><b>Configuration:</b> {cfg}</p>"
            f"<ul>{runs_html}</ul><p><b>{e(str(info['power']))}</b></p>{unpaired}"
            f"<h2>Headline</h2><p>{e(headline_text(board))}</p>"
            f'<div class="scroll">{to_html_table(board.headline_table, "leaderboard headline")}</div>'
            + (f"<h2>FR({HEADLINE_K}) per attack generator</h2>{forests}" if forests else "")
            + f"<h2>Details</h2><p>{e(str(info['rule']))}</p>"
            f'<div class="scroll">{to_html_table(board.table)}</div>{maps}</body></html>\n')


def render(board: Board, fmt_name: str) -> str:
    """The board as text in one of :data:`FORMATS`."""
    if fmt_name == "md":
        return to_md(board)
    if fmt_name == "csv":
        return board.numeric.to_csv(index=False, float_format="%.6g", lineterminator="\n")
    if fmt_name == "html":
        return to_html(board)
    raise ValueError(f"unknown leaderboard format {fmt_name!r}; choose one of {', '.join(FORMATS)}")


def write(board: Board, out_dir: str | Path = "leaderboards",
          formats: tuple[str, ...] = ("md", "csv")) -> list[Path]:
    """Write the board in the given formats into ``out_dir``, nothing else.

    Files are ``<stem>.md`` with ``<stem>-forest-<generator>.png`` (one forest plot per attack
    generator, linked from the Markdown), ``<stem>.csv`` with ``<stem>-pairs.csv`` (every
    pairwise test) and ``<stem>.html`` (the forest plots embedded); ``<stem>`` is the task for
    the ``default`` suite and ``<task>-<suite>`` for any other (a smoke run never overwrites the
    default board).

    Returns
    -------
    list of Path
        The files written, in the order of ``formats`` (each board file before its companions).
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown leaderboard format {bad[0]!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = board.stem()
    pngs = forest_pngs(board) if ("md" in formats or "html" in formats) else {}
    written = []
    for f in formats:
        path = out / f"{stem}.{f}"
        if f == "md":
            _atomic_write(path, to_md(board, pngs))
        elif f == "html":
            _atomic_write(path, to_html(board, pngs))
        else:
            _atomic_write(path, render(board, f))
        written.append(path)
        if f == "md":
            for g, png in pngs.items():
                written.append(_atomic_write_bytes(out / forest_name(board, g), png))
        if f == "csv":
            pairs = out / f"{stem}-pairs.csv"
            _atomic_write(pairs, board.pairs().to_csv(index=False, float_format="%.6g",
                                                      lineterminator="\n"))
            written.append(pairs)
    return written


def _atomic_write_bytes(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


__all__ = ["FORMATS", "forest_name", "forest_pngs", "headline_md", "heatmap_html", "to_html",
           "to_html_table", "to_md", "write"]
