"""The S3 client for the vendor's flat files, and keeping its credentials out of every text.

Credentials are the S3 keys of the Massive (Polygon) dashboard -- not the REST API key. They
come from boto3's default chain: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` in the
environment, or a profile of ``~/.aws/credentials`` / ``~/.aws/config`` (``--profile`` or
``AWS_PROFILE``). gapline never stores them; while a sync runs, every log record (boto3's and
botocore's debug lines print the signed ``Authorization`` header) and every error message is
scrubbed of them (:func:`scrub`, :func:`scrubbed_logs`).
"""
from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
from urllib.parse import urlsplit

from ..errors import PolygonError
from ..redact import redact

ENDPOINT_ENV = "GAPLINE_S3_ENDPOINT"
DEFAULT_ENDPOINT = "https://files.massive.com"  # Polygon's files.polygon.io, renamed
BUCKET = "flatfiles"
#: botocore's retry policy: "standard" mode retries throttling (503 SlowDown), 5xx, timeouts
#: and connection errors with exponential backoff, up to this many attempts per request.
MAX_ATTEMPTS = 8
CONNECT_TIMEOUT, READ_TIMEOUT = 10, 60

_LOOPBACK_NAMES = {"localhost"}
_SIGV4_CREDENTIAL = re.compile(r"(?i)(credential=)[^\s,'\"]+")
_SIGV4_SIGNATURE = re.compile(r"(?i)(signature=)[0-9a-f]+")
_SECURITY_TOKEN = re.compile(r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)[^\s,'\"&]+")


class FlatFilesError(PolygonError):
    """A flat-file sync failed; the message never contains the S3 credentials."""


def scrub(text: str, secrets=()) -> str:
    """``text`` without ``secrets`` (access key id, secret key, session token), SigV4
    ``Credential=``/``Signature=`` values, security tokens and Bearer tokens / ``apiKey=``."""
    text = str(text)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _SIGV4_CREDENTIAL.sub(r"\1***", text)
    text = _SIGV4_SIGNATURE.sub(r"\1***", text)
    text = _SECURITY_TOKEN.sub(r"\1***", text)
    return redact(text)


@contextlib.contextmanager
def scrubbed_logs(secrets):
    """Scrub every log record created while the block runs (any logger, any thread).

    A record factory rather than a logger filter: botocore logs from many child loggers,
    some created lazily on the first request, and a filter on a parent logger does not see
    records of its children."""
    secrets = tuple(s for s in secrets if s)
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return record
        clean = scrub(message, secrets)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info),
                                    secrets)
        return record

    logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous)


def resolve_endpoint(endpoint: str | None = None, environ=None) -> str:
    """The S3 endpoint: ``endpoint``, else ``$GAPLINE_S3_ENDPOINT``, else
    :data:`DEFAULT_ENDPOINT`. It must be ``https://host[:port]``; plain ``http`` is accepted
    for a loopback host only (a local stand-in such as moto)."""
    environ = os.environ if environ is None else environ
    source = "--s3-endpoint" if endpoint else ENDPOINT_ENV
    url = (endpoint or environ.get(ENDPOINT_ENV, "").strip() or DEFAULT_ENDPOINT).rstrip("/")
    parts = urlsplit(url)
    try:
        host = parts.hostname or ""
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        host = ""
    if "@" in url:  # user info: never shown (a secret may hold '/', which ends the netloc)
        problem, shown = "holds user credentials ('@')", "(not shown)"
    else:
        shown = repr(redact(f"{parts.scheme}://{parts.netloc}" if parts.scheme else url))
        problem = (
            "is not https" if parts.scheme.lower() not in ("https", "http")
            else "has no valid host and port" if not host
            else "has a path, query or fragment" if (parts.path not in ("", "/") or parts.query
                                                      or parts.fragment)
            else "is plain http to a host other than 127.0.0.1/localhost"
            if parts.scheme.lower() == "http" and not _is_loopback(host) else None)
    if problem:
        raise FlatFilesError(
            f"{source}: the S3 endpoint {shown} {problem}; it must look like "
            f"{DEFAULT_ENDPOINT} (https, a host, no user, path or query; http only for a local "
            f"stand-in on 127.0.0.1)")
    return url


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_client(endpoint: str, profile: str | None = None, jobs: int = 4):
    """``(boto3 S3 client, secrets)`` for ``endpoint`` with boto3's default credential chain
    (or ``profile``); ``secrets`` are the values :func:`scrub` removes from text.

    Raises
    ------
    FlatFilesError
        When the profile does not exist or no credentials are found.
    """
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    try:
        session = boto3.Session(profile_name=profile or None)
    except botocore.exceptions.ProfileNotFound:
        raise FlatFilesError(f"AWS profile {profile!r} not found in ~/.aws/credentials or "
                             f"~/.aws/config") from None
    try:
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as exc:
        raise FlatFilesError(f"cannot read the S3 credentials: {scrub(exc)}") from None
    if credentials is None:
        raise FlatFilesError(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to the S3 keys "
            "of your Massive (Polygon) dashboard -- not the REST API key -- or put them in an "
            "AWS profile and pass --profile NAME (or set AWS_PROFILE)")
    frozen = credentials.get_frozen_credentials()
    secrets = tuple(s for s in (frozen.access_key, frozen.secret_key, frozen.token) if s)
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                    retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
                    connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                    max_pool_connections=max(10, int(jobs) + 2))
    client = session.client("s3", endpoint_url=endpoint,
                            region_name=session.region_name or "us-east-1", config=config)
    return client, secrets


def client_error_message(exc, secrets=()) -> str:
    """A short, credential-free description of a boto3/botocore error, with a hint for the
    answers that need one (403: the vendor does not say why)."""
    response = getattr(exc, "response", None) or {}
    code = str((response.get("Error") or {}).get("Code") or "")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    text = scrub(exc, secrets)
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return (f"{text} -- check the S3 keys (the dashboard's S3 Access Key and Secret Key, "
                f"not the REST API key)")
    if status == 403 or code in ("AccessDenied", "Forbidden", "403"):
        return (f"{text} -- access denied: the file may be outside your plan or its history, "
                f"not yet published (a session's files appear around 11:00 ET the next day), "
                f"or the keys are wrong")
    if code in ("PreconditionFailed", "412") or status == 412:
        return f"{text} -- the file changed on the server while it was synced; run again"
    return text
