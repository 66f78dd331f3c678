"""The errors of the Polygon REST client; no message ever contains the API key."""
from __future__ import annotations


class PolygonError(RuntimeError):
    """A Polygon request failed; the message never contains the API key."""


class MissingApiKeyError(PolygonError):
    """No API key was given and ``POLYGON_API_KEY`` is unset."""


class PolygonAuthError(PolygonError):
    """Polygon answered 401/403: the key is wrong, expired or not entitled. Not retried."""


class PolygonHTTPError(PolygonError):
    """A non-retried HTTP error (4xx other than 401/403/429)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class RetriesExhaustedError(PolygonError):
    """A retried failure (429, 5xx, network, invalid JSON) persisted through every attempt."""


class PaginationLoopError(PolygonError):
    """Polygon returned a ``next_url`` that was already followed."""
