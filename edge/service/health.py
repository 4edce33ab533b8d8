"""`edge health`: ask the running daemon's HTTP sink whether frames and inferences are fresh (for fleet gates).

Exit 0: ready (/readyz says every source and the inference are fresh); 1: running but not ready (the reasons
are printed); 3: not running or not reachable (connection refused, timeout, wrong token).
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Optional, Tuple

from ..settings import DEFAULT_HTTP

DEFAULT_URL = f"http://{DEFAULT_HTTP}"
READY, NOT_READY, UNREACHABLE = 0, 1, 3


def url_from_config(path: str) -> Tuple[Optional[str], Optional[str]]:
    """(base URL, bearer token) of the HTTP sink a config sets up; (None, None) when it has none."""
    from ..errors import ConfigError
    from ..settings import secret
    from .config import load

    http = load(path).sinks.http
    if http is None:
        return None, None
    host, _, port = http.listen.rpartition(":")
    host = host.strip("[]")
    host = "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host
    try:
        token = http.token or secret(http.token_env, http.token_credential, "sinks.http.token")
    except ConfigError:
        token = None
    return f"http://{f'[{host}]' if ':' in host else host}:{port}", token


def _get(url: str, token: Optional[str], timeout: float) -> Tuple[int, dict]:
    """(status code, JSON body) of one GET; HTTP errors are answers too."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            body = json.loads(e.read() or b"{}")
        except ValueError:
            body = {}
        return e.code, body


def check(url: str, token: Optional[str] = None, timeout: float = 3.0) -> Tuple[int, dict]:
    """(exit code, report) from one look at /readyz and /latest."""
    base = url.rstrip("/")
    try:
        code, body = _get(f"{base}/readyz", token, timeout)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        return UNREACHABLE, {"ok": False, "url": base, "reasons": [f"not running or unreachable: {reason}"]}
    if code in (401, 403):
        return UNREACHABLE, {"ok": False, "url": base,
                             "reasons": ["the daemon wants a bearer token: set EDGE_HTTP_TOKEN or pass --token-env"]}
    if code not in (200, 503):
        return UNREACHABLE, {"ok": False, "url": base, "reasons": [f"/readyz answered HTTP {code}"]}
    report = {"ok": code == 200 and bool(body.get("ready")), "url": base, "reasons": body.get("reasons") or []}
    try:
        latest_code, latest = _get(f"{base}/latest", token, timeout)
    except (urllib.error.URLError, OSError, ValueError):
        latest_code, latest = 0, {}
    if latest_code == 200:
        report["latest"] = {"source": latest.get("source"), "seq": latest.get("seq"), "model": latest.get("model"),
                            "age_s": round(time.time() - latest.get("inferred_at", 0.0), 3)}
    return (READY if report["ok"] else NOT_READY), report


def wait_healthy(url: str, token: Optional[str], wait: float, timeout: float = 3.0) -> Tuple[int, dict]:
    """check() until ready or `wait` seconds have passed (one look when wait is 0)."""
    deadline = time.monotonic() + wait
    while True:
        code, report = check(url, token, timeout)
        if code == READY or time.monotonic() >= deadline:
            return code, report
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def token_from_env(name: Optional[str]) -> Optional[str]:
    """The bearer token from the named environment variable (EDGE_HTTP_TOKEN by default)."""
    return os.environ.get(name or "EDGE_HTTP_TOKEN") or None
