"""`rtsp://`, `rtsps://`, `http(s)://` streams through OpenCV's FFmpeg backend, with open/read timeouts.

OpenCV only says that a stream did not open; for rtsp:// the camera itself is then asked (one RTSP DESCRIBE, as
RFC 2326 defines it) so the error says which: unreachable, refused, no stream at that path, or wrong credentials.
"""
from __future__ import annotations

import base64
import hashlib
import re
import socket
from typing import Optional
from urllib.parse import unquote, urlsplit, urlunsplit

import cv2

from .opencv import OpenCVSource

PROBE_TIMEOUT_S = 5.0


class NetworkSource(OpenCVSource):
    """A network camera or stream; a lost connection raises so the pipeline reconnects."""

    def __init__(self, uri: str, timeout: float = 10.0, source_id: Optional[str] = None):
        ms = int(timeout * 1000)
        super().__init__(redact(uri), uri, cv2.CAP_FFMPEG,  # the password never reaches logs or /healthz
                         [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms],
                         source_id or urlsplit(uri).hostname or "stream")

    def cannot_open(self) -> str:
        """Network-specific hint: for rtsp://, what the camera answers."""
        if urlsplit(str(self.target)).scheme.lower() == "rtsp":
            problem = rtsp_problem(str(self.target))
            if problem:
                return problem
        return "cannot open stream (host unreachable, wrong path or credentials, or unsupported codec)"


def redact(uri: str) -> str:
    """The URL with its password replaced by ***."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def rtsp_problem(uri: str, timeout: float = PROBE_TIMEOUT_S) -> Optional[str]:
    """Why an rtsp:// URL does not open, as the camera answers a DESCRIBE; None when it answers 200 OK (then the
    fault is past the handshake: codec or transport)."""
    parts = urlsplit(uri)
    host, port = parts.hostname or "", parts.port or 554
    plain = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))  # no credentials in the request
    try:
        status, challenge = _describe(host, port, plain, None, timeout)
        if status == 401 and parts.username is not None and challenge:
            user, password = unquote(parts.username), unquote(parts.password or "")
            status, _ = _describe(host, port, plain, _authorization(challenge, user, password, plain), timeout)
    except socket.gaierror:
        return f"cannot resolve the camera's host name {host!r} (DNS, or a typo in the URL)"
    except ConnectionRefusedError:
        return f"nothing accepts connections at {host}:{port} (camera off or rebooting, RTSP disabled, or wrong port)"
    except (socket.timeout, TimeoutError):
        return f"no answer from {host}:{port} within {timeout:g} s (wrong address, network down, or a firewall)"
    except (OSError, ValueError) as e:
        return f"cannot talk RTSP to {host}:{port} ({getattr(e, 'strerror', None) or e})"
    if status == 401:
        return ("the camera refused the user name or password (401 Unauthorized); check them in the URL"
                if parts.username is not None else
                "the camera wants a user name and password (401 Unauthorized): rtsp://USER:PASSWORD@host/path")
    if status == 404:
        return "the camera has no stream at this path (404 Not Found); see its manual or web page for the RTSP path"
    if status == 200:
        return None
    return f"the camera answered RTSP status {status} to DESCRIBE"


def _describe(host: str, port: int, uri: str, authorization: Optional[str], timeout: float) -> tuple:
    """(status code, the WWW-Authenticate header or "") of one DESCRIBE on a fresh connection."""
    request = f"DESCRIBE {uri} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\nUser-Agent: edge\r\n"
    if authorization:
        request += f"Authorization: {authorization}\r\n"
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall((request + "\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    match = re.match(r"RTSP/1\.\d (\d{3})", lines[0])
    if not match:
        raise ValueError("not an RTSP answer")
    challenges = [line.split(":", 1)[1].strip() for line in lines[1:] if line.lower().startswith("www-authenticate:")]
    digest = [c for c in challenges if c.lower().startswith("digest")]
    return int(match.group(1)), (digest or challenges or [""])[0]


def _authorization(challenge: str, user: str, password: str, uri: str) -> str:
    """The Authorization header answering a Basic or Digest (RFC 2617, no qop, as cameras send it) challenge."""
    if challenge.lower().startswith("basic"):
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm, nonce = fields.get("realm", ""), fields.get("nonce", "")

    def md5(text: str) -> str:
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()  # the scheme is MD5 by definition

    response = md5(f"{md5(f'{user}:{realm}:{password}')}:{nonce}:{md5(f'DESCRIBE:{uri}')}")
    return f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", response="{response}"'
