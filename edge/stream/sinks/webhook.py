"""Webhook sink: POST each event as JSON to a URL from a background thread, retrying with backoff."""
from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit

from ... import __version__
from ...errors import SinkError
from ...settings import WebhookConfig
from .worker import QueuedSink, encode_event


class WebhookSink(QueuedSink):
    """POSTs events in order; network errors, 429 and 5xx are retried (backoff doubling to 30 s), then counted failed."""

    name = "webhook"

    @classmethod
    def from_settings(cls, settings: WebhookConfig, queue_size: int = 1000) -> "WebhookSink":
        """The sink `sinks.webhook` describes."""
        return cls(settings.url, timeout=settings.timeout, retries=settings.retries, queue_size=queue_size)

    def __init__(self, url: str, timeout: float = 5.0, retries: int = 3, backoff: float = 0.5,
                 queue_size: int = 1000) -> None:
        super().__init__(queue_size)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SinkError(f"webhook: {url!r} is not an http:// or https:// URL")
        if retries < 0 or timeout <= 0:
            raise SinkError(f"webhook: retries must be >= 0 and timeout > 0, got {retries} and {timeout}")
        self.url, self.timeout, self.retries, self.backoff = url, timeout, retries, backoff

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": f"edge/{__version__}"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            response.read()

    def _deliver(self, event: dict) -> None:
        body = encode_event(event).encode("utf-8")
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                self._post(body)
            except urllib.error.HTTPError as exc:
                if (exc.code != 429 and exc.code < 500) or attempt == self.retries:
                    raise SinkError(f"webhook: {self.url} answered {exc.code} {exc.reason}") from exc
            except OSError as exc:  # refused, unreachable, timed out
                if attempt == self.retries:
                    raise SinkError(f"webhook: {self.url}: {getattr(exc, 'reason', exc)}") from exc
            else:
                self.counters.add("published")
                return
            if self._abort.wait(delay):
                raise SinkError("webhook: closed while retrying")
            delay = min(delay * 2, 30.0)
