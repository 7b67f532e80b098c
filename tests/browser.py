"""Open a page (the report, the comparison) in headless Chromium and read back what happened.

Shared by tests/test_reports.py and tests/test_compare.py. A probe script, independent of the
page's own check script, records failed loads, script errors, console errors, CSP violations,
the images that decoded and the page's layout at WINDOW's width; the page's CSP is widened by
the probe's hash only, so images and styles load under the page's own policy.
"""

import base64
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

WINDOW = (1280, 2000)
"""The window the layout is measured in: a common laptop width."""
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Records failed resource loads (capture phase), script errors, console.error calls and CSP
# violations (one reported after 'load', as on a busy machine, updates its attribute); on 'load'
# counts the images that decoded and measures the layout: the page's width against the window's,
# the sections whose table box scrolls sideways, each .reason cell's width, and, with such a box
# scrolled to its right end, each .sticky cell's distance from the box's left edge.
PROBE = """(function(){var errors=[],csp=[];
window.addEventListener('error',function(e){var t=e.target;
errors.push(t&&t!==window&&(t.src||t.href)?'failed to load '+(t.src||t.href):'script error: '+(e.message||e.type));},true);
document.addEventListener('securitypolicyviolation',function(e){csp.push(e.violatedDirective+' '+e.blockedURI);
if(document.body&&document.body.hasAttribute('data-probe-csp')){document.body.setAttribute('data-probe-csp',csp.join(' | '));}});
var original=console.error;console.error=function(){errors.push('console.error: '+Array.prototype.join.call(arguments,' '));
return original.apply(console,arguments);};
window.addEventListener('load',function(){var images=document.images,ok=0,broken=[];
for(var i=0;i<images.length;i++){if(images[i].complete&&images[i].naturalWidth>0){ok++;}else{broken.push(images[i].getAttribute('src'));}}
var scrolling=[],reasons=[],pinned=[];
document.querySelectorAll('.scroll').forEach(function(e){if(e.scrollWidth>e.clientWidth){var s=e.closest('section');scrolling.push(s?s.id:'?');
e.scrollLeft=e.scrollWidth;var left=e.getBoundingClientRect().left;
e.querySelectorAll('td.sticky').forEach(function(c){pinned.push(Math.round(c.getBoundingClientRect().left-left));});e.scrollLeft=0;}});
document.querySelectorAll('td.reason').forEach(function(e){reasons.push(Math.round(e.getBoundingClientRect().width));});
var b=document.body;b.setAttribute('data-probe-images-ok',ok+'/'+images.length);b.setAttribute('data-probe-broken',broken.join(' '));
b.setAttribute('data-probe-errors',errors.join(' | '));b.setAttribute('data-probe-csp',csp.join(' | '));
b.setAttribute('data-probe-width',document.documentElement.scrollWidth+'/'+window.innerWidth);
b.setAttribute('data-probe-scrolling',scrolling.join(' '));b.setAttribute('data-probe-pinned-px',pinned.join(' '));b.setAttribute('data-probe-reason-px',reasons.join(' '));});})();"""  # noqa: E501
CANARY = "<script>document.documentElement.setAttribute('data-canary','ran')</script>"
DUMP = ("--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", f"--window-size={WINDOW[0]},{WINDOW[1]}", "--dump-dom")


def chromium() -> str:
    """The chromium binary, or skip the test that needs it."""
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("no chromium binary on PATH: the browser test needs Chromium (Debian: apt install chromium)")
    return binary


def probing_copy(folder: Path, target: Path, canary: bool = False) -> Path:
    """A copy of a page's folder whose index.html runs PROBE first.

    The page's CSP (script-src by hash only) refuses inline scripts and would refuse
    <script src="probe.js"> too (no 'self' in script-src), so the copy adds PROBE's hash to
    script-src and nothing else: images and styles still load under the page's own policy.
    """
    shutil.copytree(folder, target)
    text = (target / "index.html").read_text()
    digest = base64.b64encode(hashlib.sha256(PROBE.encode()).digest()).decode()
    assert text.count("script-src &#x27;sha256-") == 1
    text = text.replace("script-src &#x27;sha256-", f"script-src &#x27;sha256-{digest}&#x27; &#x27;sha256-")
    csp_meta = re.search(r'<meta http-equiv="Content-Security-Policy"[^>]*>\n', text).group(0)
    text = text.replace(csp_meta, f"{csp_meta}<script>{PROBE}</script>\n")
    if canary:
        text = text.replace("</body>", f"{CANARY}\n</body>")
    (target / "index.html").write_text(text)
    return target / "index.html"


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=90
    )


def body_attributes(dom: str) -> dict[str, str]:
    body = re.search(r"<body([^>]*)>", dom)
    assert body, f"no <body> in the dumped DOM: {dom[:300]!r}"
    return dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))


def probe(binary: str, folder: Path, tmp_path: Path) -> tuple[dict[str, str], str]:
    """The probed page's <body> attributes after load, and Chromium's log."""
    index = probing_copy(folder, tmp_path / "probe")
    result = run_chromium(binary, tmp_path / "profile-probe", *DUMP, index.as_uri())
    body = body_attributes(result.stdout)
    assert "data-probe-images-ok" in body, f"the probe did not run: {body} {result.stderr[-2000:]}"
    return body, result.stderr


def assert_loads_cleanly(binary: str, folder: Path, tmp_path: Path, images: int) -> dict[str, str]:
    """Every image decodes and nothing fails, under the page's own CSP, and the page fits the window;
    and the CSP refuses a script injected into the page. Returns the probe's attributes."""
    body, log = probe(binary, folder, tmp_path)
    assert body["data-probe-images-ok"] == f"{images}/{images}", body["data-probe-broken"]
    assert body["data-probe-errors"] == "" and body["data-probe-csp"] == ""
    assert body["data-images-ok"] == f"{images}/{images}" and body["data-errors"] == ""  # the page's own check
    assert not [line for line in log.splitlines() if ":CONSOLE" in line]  # nothing logged at all
    width, window = map(int, body["data-probe-width"].split("/"))
    assert window == WINDOW[0] and width <= window, f"the page is {width} px wide in a {window} px window"

    index = probing_copy(folder, tmp_path / "canary", canary=True)
    result = run_chromium(binary, tmp_path / "profile-canary", *DUMP, index.as_uri())
    assert "data-canary" not in result.stdout.split("<body")[0]
    assert "script-src" in body_attributes(result.stdout)["data-probe-csp"]
    return body


def screenshot(binary: str, folder: Path, tmp_path: Path, height: int) -> Path:
    """A PNG of the page as shipped, WINDOW wide and `height` tall."""
    shown = tmp_path / "shown"
    shutil.copytree(folder, shown)
    picture = tmp_path / "screenshot.png"
    run_chromium(
        binary,
        tmp_path / "profile-shot",
        "--hide-scrollbars",
        f"--window-size={WINDOW[0]},{height}",
        f"--screenshot={picture}",
        (shown / "index.html").as_uri(),
    )
    assert picture.is_file() and picture.read_bytes()[:8] == PNG_MAGIC
    return picture
