"""The device web page: what the server serves (headers, no traversal, /api/status against its schema) and, in headless
Chromium over the DevTools protocol, what a person sees with `edge run --http` (token prompt, live frames, status,
events, a source that ends turning red)."""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Optional

import cv2
import numpy as np
import pytest

from edge.demo import BUNDLE
from edge.schema import schema_path
from edge.service.server import HttpServer

from .test_sinks_http import get
from .test_sinks_support import Status, detections, event, free_port, image, wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--remote-allow-origins=*", "--window-size=1280,1000"]
VISIBLE = "getComputedStyle(document.getElementById('%s')).display !== 'none'"


@pytest.fixture
def served():
    sink = HttpServer("127.0.0.1:0", token="s3cret")
    status = Status()
    sink.start(status)
    yield sink, status, "http://%s:%d" % sink.address
    sink.close()


def test_page_is_served_with_security_headers_and_without_token(served):
    sink, status, base = served
    for path, kind in (("/", "text/html"), ("/app.js", "text/javascript"), ("/app.css", "text/css")):
        code, headers, body = get(base + path)
        assert code == 200 and headers["Content-Type"].startswith(kind) and body
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert get(base + "/api/status")[0] == 401  # the page is public, the data is not
    code, headers, _ = get(base + "/healthz", token="s3cret")
    assert code == 200 and headers["X-Content-Type-Options"] == "nosniff"


def test_nothing_outside_the_static_folder(served):
    sink, status, base = served
    for path in ("/../server.py", "/static/../server.py", "/%2e%2e/server.py", "/app.js/../../server.py",
                 "/index.html%00", "/static/app.js", "//etc/passwd", "/server.py"):
        code, _, body = get(base + path, token="s3cret")
        assert code == 404 and b"import" not in body, path


def test_api_status_matches_its_schema(served):
    jsonschema = pytest.importorskip("jsonschema")
    sink, status, base = served
    with open(schema_path("status"), encoding="utf-8") as f:
        schema = json.load(f)
    code, _, body = get(base + "/api/status", token="s3cret")
    assert code == 200
    jsonschema.validate(json.loads(body), schema)
    tracked = event(3)
    tracked["detections"][0]["track_id"] = 7
    tracked["counts"] = {"line_a": {"in": 2, "out": 1}}
    sink.publish(event(2), image(2), detections())
    sink.publish(tracked, image(3), detections())
    status.snapshot["sources"]["cam0"].update(captured=40, last_frame_at=time.time())
    document = json.loads(get(base + "/api/status", token="s3cret")[2])
    jsonschema.validate(document, schema)
    assert [e["seq"] for e in document["events"]] == [3, 2]  # newest first
    (cam0,) = document["sources"]
    assert cam0["id"] == "cam0" and cam0["seq"] == 3 and cam0["counts"] == {"line_a": {"in": 2, "out": 1}}
    assert cam0["detections"][0]["track_id"] == 7 and cam0["ok"] is True
    assert document["model"]["precision"] == "fp32" and document["model"]["path"] == "tiny.onnx"
    status.snapshot["sources"]["cam0"]["connected"] = False
    document = json.loads(get(base + "/api/status", token="s3cret")[2])
    assert document["sources"][0]["ok"] is False and document["ready"] is False
    assert any(r.startswith("source cam0:") for r in document["reasons"])


def test_previews_per_source(served):
    sink, status, base = served
    sink.publish(event(0, "a"), image(0, 160, 120), detections())
    sink.publish(event(0, "b"), image(0, 320, 240), detections())
    for source, width in (("a", 160), ("b", 320), (None, 320)):
        code, _, body = get(base + "/snapshot.jpg" + (f"?source={source}" if source else ""), token="s3cret")
        assert code == 200 and cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).shape[1] == width
    assert get(base + "/snapshot.jpg?source=nope", token="s3cret")[0] == 404


class Browser:
    """Headless Chromium driven over the DevTools protocol (one page)."""

    def __init__(self, profile: str):
        import websocket

        self.process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(profile, "DevToolsActivePort")
        assert wait_until(lambda: os.path.exists(port_file) and open(port_file).read().count("\n") >= 1, timeout=30)
        port = int(open(port_file).read().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self._id = 0

    def call(self, method: str, **params) -> dict:
        """Send one command and return its result (events in between are ignored)."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                assert "error" not in message, message
                return message["result"]

    def js(self, expression: str):
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def screenshot(self, clip: Optional[dict] = None) -> bytes:
        """A PNG of the viewport, or of the clip {x, y, width, height, scale}."""
        result = self.call("Page.captureScreenshot", format="png", **({"clip": clip} if clip else {}))
        return base64.b64decode(result["data"])

    def close(self) -> None:
        self.ws.close()
        self.process.terminate()
        self.process.wait(10)


def short_video(path: str, frames: int, fps: float = 10.0) -> str:
    """An MJPG .avi of moving shapes that ends after `frames` (a source that stops)."""
    from edge.stream.sources.synthetic import render

    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    for seq in range(frames):
        writer.write(render(seq, 320, 240))
    writer.release()
    return path


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_page_in_a_browser(tmp_path):
    pytest.importorskip("websocket", reason="needs websocket-client (the dev extra)")
    port, token = free_port(), "s3cret"
    ending = short_video(str(tmp_path / "door.avi"), 120)  # 12 s at its own pace, then the source ends
    edge = subprocess.Popen([sys.executable, "-m", "edge", "run", "--model", BUNDLE, "--conf", "0.3",
                             "--source", "yard=synthetic:320x240@10", "--source", f"door={ending}",
                             "--http", f"127.0.0.1:{port}", "--http-token", token, "--http-max-age", "1.5"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    browser = None
    try:
        assert wait_until(lambda: _up(base), timeout=60), edge.stderr.read() if edge.poll() is not None else ""
        browser = Browser(tempfile.mkdtemp(dir=tmp_path))
        browser.call("Page.enable")
        browser.call("Page.navigate", url=base + "/")
        # a token is set: the page asks for it and shows nothing else
        assert wait_until(lambda: browser.js(VISIBLE % "login"), timeout=20)
        assert browser.js(VISIBLE % "main") is False
        browser.js(f"document.getElementById('token').value = {json.dumps(token)};"
                   "document.getElementById('login').requestSubmit()")
        assert wait_until(lambda: browser.js("document.querySelectorAll('.source').length") == 2, timeout=20)
        assert token not in browser.js("location.href") and browser.js("sessionStorage.getItem('edge-token')") == token
        # live frames in each preview: blob images that are not blank
        assert wait_until(lambda: browser.js("[...document.querySelectorAll('img.live')].every("
                                             "i => i.src.startsWith('blob:') && i.naturalWidth === 320)"), timeout=20)
        box = browser.js("(() => { const r = document.querySelector('[data-source=yard] img.live')"
                         ".getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; })()")
        region = cv2.imdecode(np.frombuffer(browser.screenshot(dict(box, scale=1)), np.uint8), cv2.IMREAD_COLOR)
        assert region.std() > 10  # shapes and boxes, not an empty box
        # the status panel shows what /api/status says; events arrive with thumbnails
        status = json.loads(get(base + "/api/status", token)[2])
        model = browser.js("document.querySelector('[data-key=model]').textContent")
        assert status["model"]["id"] in model and status["model"]["family"] in model
        failures = browser.js("document.querySelector('[data-key=sink_failures]').textContent")
        assert failures == str(status["sink_failures"])
        assert wait_until(lambda: browser.js("document.querySelectorAll('#events li').length") > 0, timeout=10)
        assert wait_until(lambda: browser.js("[...document.querySelectorAll('#events img')].some(i => i.src)"))
        assert browser.js("document.getElementById('banner').className") == "ok"
        assert browser.js(VISIBLE % "login") is False and browser.js(VISIBLE % "main") is True
        shot = browser.screenshot()
        (tmp_path / "page.png").write_bytes(shot)
        if os.environ.get("EDGE_SCREENSHOT"):  # EDGE_SCREENSHOT=docs/screenshot.png refreshes the README picture
            small = cv2.imdecode(np.frombuffer(shot, np.uint8), cv2.IMREAD_COLOR)
            small = cv2.resize(small, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
            cv2.imwrite(os.environ["EDGE_SCREENSHOT"], small, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        # the video source ends: its card and the banner turn red within a few seconds, the other stays live
        assert wait_until(lambda: browser.js("document.querySelector('[data-source=door]').classList.contains('down')"),
                          timeout=30)
        assert browser.js("document.getElementById('banner').className") == "bad"
        assert browser.js("document.querySelector('[data-source=yard]').classList.contains('down')") is False
        assert "source door:" in browser.js("document.querySelector('[data-source=door] .reason').textContent")
    finally:
        if browser is not None:
            browser.close()
        edge.terminate()
        edge.wait(30)


def _up(base: str) -> bool:
    try:
        return get(base + "/")[0] == 200
    except OSError:
        return False
