"""The report's HTML: pure functions from computed sections to one self-contained page.

Every string that comes from a config, the data or an error goes through esc(). The page
loads nothing from the network: styles and the one script are inline, figures are PNGs
beside it referenced by relative path, and a Content-Security-Policy allows only that
(the script by its hash, so text injected into the page could not run).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0 auto;max-width:1225px;padding:0 20px 40px;color:#1d1d1f;line-height:1.4}
h1{font-size:1.6em;margin:18px 0 4px}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:34px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}th,td{border:1px solid #ddd;padding:3px;text-align:left;vertical-align:top}
th{background:#f4f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.scroll{overflow-x:auto;max-height:640px;overflow-y:auto}
tbody tr{background:#fff}tr.errored{background:#fdecea}tr.stopped_early{background:#fff4e5}tr.running{background:#eaf7ea}tr.pending td{color:#777}tr.infeasible td{font-style:italic;color:#777}
tr.diverged{background:#f3ecf9}
.scroll .sticky{position:sticky;left:0;z-index:1;background:inherit;box-shadow:inset -1px 0 #ddd,inset 1px 0 #ddd;padding-right:6px}.scroll th.sticky{background:#f4f4f6}
tr.best td{font-weight:600}
.banner{padding:8px 12px;border-radius:6px;margin:10px 0}.progress{background:#eaf2fd;border:1px solid #9cc0f0}.done{background:#eaf7ea;border:1px solid #9ad29a}
.warn{background:#fff4e5;border:1px solid #f0b75e;padding:6px 10px;border-radius:6px;margin:6px 0}
.note{color:#555;font-style:italic}
figure{margin:10px 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:10px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;font-size:14px}dl.facts dt{font-weight:600}dl.facts dd{margin:0;word-break:break-word}
code{font-size:12px;background:#f4f4f6;padding:1px 4px;border-radius:3px;word-break:break-all}
.reason{min-width:12em;max-width:26em;overflow-wrap:anywhere}.where{min-width:7em}.run{min-width:12em}
"""

# Records image and script errors into the DOM after load, so a headless browser's
# --dump-dom can tell whether every figure loaded and nothing failed.
CHECK_SCRIPT = """
(function(){var errors=[];
window.addEventListener('error',function(e){var t=e.target;errors.push(t&&t.src?'failed to load '+t.src:String(e.message||e.type));},true);
document.addEventListener('securitypolicyviolation',function(e){errors.push('blocked by CSP: '+e.blockedURI);});
var original=console.error;console.error=function(){errors.push(Array.prototype.join.call(arguments,' '));return original.apply(console,arguments);};
window.addEventListener('load',function(){var images=document.images,ok=0;
for(var i=0;i<images.length;i++){if(images[i].complete&&images[i].naturalWidth>0){ok++;}}
document.body.setAttribute('data-images-ok',ok+'/'+images.length);
document.body.setAttribute('data-errors',errors.join(' | '));});})();
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def csp() -> str:
    digest = base64.b64encode(hashlib.sha256(CHECK_SCRIPT.encode("utf-8")).digest()).decode("ascii")
    return (
        f"default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp())}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n<script>{CHECK_SCRIPT}</script>\n"
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


@dataclass(frozen=True)
class Section:
    """One section of a page: its anchor, its title and its parts (HTML). Its title carries no
    number: a page numbers its sections by their order (`numbered`)."""

    anchor: str
    """The section element's id: what a link to it (#leaderboard) and a test find it by."""
    title: str
    """Its heading, without its number."""
    parts: tuple[str, ...] = ()
    """Its HTML parts, in order; empty ones are left out."""

    def html(self, number: int) -> str:
        """The section element, its heading numbered `number`."""
        body = "\n".join(p for p in self.parts if p)
        return f'<section id="{esc(self.anchor)}">\n<h2>{esc(f"{number}. {self.title}")}</h2>\n{body}\n</section>'


def section(anchor: str, title: str, *parts: str) -> Section:
    """A section of `parts` (HTML; empty ones left out) under `title`, numbered where its page places it."""
    return Section(anchor, title, parts)


def numbered(sections: list[Section]) -> str:
    """The sections' HTML, one after another, numbered 1, 2, ... in the order given."""
    return "\n".join(s.html(number) for number, s in enumerate(sections, start=1))


def figure(filename: str | None, alt: str, missing: str = "not enough data yet for this figure") -> str:
    if not filename:
        return f'<p class="note">{esc(missing)}</p>'
    return f'<figure><img src="{esc(filename)}" alt="{esc(alt)}" loading="eager"></figure>'


def table(
    headers: list[str],
    rows: list[list],
    numeric: set[int] = frozenset(),
    row_classes: list[str] | None = None,
    raw: set[int] = frozenset(),
    column_classes: dict[int, str] | None = None,
) -> str:
    """A table; cells are escaped except the columns in raw (already-built HTML).

    Numeric columns get the class "num"; column_classes adds one per column (e.g. "reason": wraps).
    """

    def cls(c: int) -> str:
        names = " ".join(x for x in ("num" if c in numeric else "", (column_classes or {}).get(c, "")) if x)
        return f' class="{esc(names)}"' if names else ""

    # A header may break after an underscore (learning_<wbr>rate), so a narrow column keeps a narrow header.
    head = "".join(f"<th{cls(c)}>{esc(h).replace('_', '_<wbr>')}</th>" for c, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        row_cls = f' class="{esc(row_classes[r])}"' if row_classes and row_classes[r] else ""
        cells = "".join(f"<td{cls(c)}>" + (cell if c in raw else esc(cell)) + "</td>" for c, cell in enumerate(row))
        body.append(f"<tr{row_cls}>{cells}</tr>")
    return (
        f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n' + "\n".join(body) + "\n</tbody></table></div>"
    )


def facts(pairs: list[tuple[str, str]]) -> str:
    """A definition list; values are escaped here."""
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs if v not in (None, ""))
    return f'<dl class="facts">{items}</dl>'


def warnings_list(messages: list[str]) -> str:
    return "".join(f'<div class="warn">⚠ {esc(m)}</div>' for m in messages)


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>' if text else ""


def paragraph(text: str) -> str:
    return f"<p>{esc(text)}</p>" if text else ""


def fmt_accuracy(value) -> str:
    return "" if _nan(value) else f"{float(value):.2%}"


def fmt_number(value, digits: int = 0) -> str:
    return "" if _nan(value) else f"{float(value):,.{digits}f}"


def fmt_seconds(value) -> str:
    if _nan(value):
        return ""
    value = float(value)
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min" if value < 7200 else f"{value / 3600:.2f} h"


def fmt_time(unix_s) -> str:
    if _nan(unix_s):
        return ""
    return datetime.fromtimestamp(float(unix_s), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_json(value) -> str:
    if value is None or value == "" or value == {} or value == []:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _nan(value) -> bool:
    try:
        return value is None or value == "" or math.isnan(float(value))
    except (TypeError, ValueError):
        return True
