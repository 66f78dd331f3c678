"""Keeping the API key out of messages, exceptions, log records and shown URLs."""
from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_KEY_IN_URL = re.compile(r"(?i)(apikey=)[^&\s'\"]+")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\",}]+")


def redact(text: str, api_key: str | None = None) -> str:
    """``text`` with ``api_key``, any ``apiKey=...`` query value and any ``Bearer`` token
    replaced by ``***``."""
    if api_key:
        text = text.replace(api_key, "***")
    return _BEARER.sub(r"\1***", _KEY_IN_URL.sub(r"\1***", text))


class _RedactFilter(logging.Filter):
    """Scrub ``apiKey=...`` from urllib3's debug lines, which print every request URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _KEY_IN_URL.search(message):
            record.msg, record.args = redact(message), None
        return True


def _install_urllib3_filter() -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactFilter) for f in logger.filters):
        logger.addFilter(_RedactFilter())


def _strip_key(url: str) -> str:
    """``url`` without an ``apiKey`` query parameter (so it can be shown and compared)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() != "apikey"]
    return urlunsplit(parts._replace(query=urlencode(query)))
