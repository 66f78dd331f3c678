"""Issue #12 item 12: a huge ``Retry-After`` is capped (configurable) and the cap is logged."""
from __future__ import annotations

import email.utils
import logging
import time

import pytest

from bundles import download as dl
from tests.bundles.download.test_redirects import Transport, client_for
from tests.bundles.download.test_download import FakeResponse, ok


def limited_then_ok(retry_after, times=2):
    answers = [FakeResponse(429, {"status": "ERROR", "error": "slow down"},
                            headers={"Retry-After": retry_after})] * times + [ok([1])]
    return Transport(lambda url, params, headers: answers.pop(0))


def test_retry_after_of_a_day_is_capped_at_the_default_and_logged(caplog, monkeypatch):
    monkeypatch.delenv("GAPLINE_MAX_RETRY_AFTER", raising=False)
    sleeps = []
    client = client_for(limited_then_ok("86400"), sleep=sleeps.append, backoff=0.01)
    with caplog.at_level(logging.WARNING, logger="bundles.download.client"):
        assert client.get_json("/v3/reference/splits")["results"] == [1]
    assert sleeps == [120.0] * 2
    assert dl.DEFAULT_MAX_RETRY_AFTER == 120.0
    capped = [r.getMessage() for r in caplog.records if "capped" in r.getMessage()]
    assert len(capped) == 2
    assert "86400" in capped[0] and "120" in capped[0]
    assert "GAPLINE_MAX_RETRY_AFTER" in capped[0]


def test_retry_after_cap_from_the_environment(monkeypatch):
    monkeypatch.setenv("GAPLINE_MAX_RETRY_AFTER", "5")
    sleeps = []
    client = client_for(limited_then_ok("86400"), sleep=sleeps.append, backoff=0.01)
    client.get_json("/x")
    assert sleeps == [5.0, 5.0]


def test_retry_after_cap_argument_and_http_date_form(monkeypatch):
    monkeypatch.setenv("GAPLINE_MAX_RETRY_AFTER", "5")
    tomorrow = email.utils.formatdate(time.time() + 86400, usegmt=True)
    sleeps = []
    client = client_for(limited_then_ok(tomorrow, times=1), sleep=sleeps.append,
                        backoff=0.01, max_retry_after=3)  # the argument wins over the env
    client.get_json("/x")
    assert sleeps == [3.0]


def test_retry_after_below_the_cap_is_honoured(monkeypatch):
    monkeypatch.delenv("GAPLINE_MAX_RETRY_AFTER", raising=False)
    sleeps = []
    client_for(limited_then_ok("30", times=1), sleep=sleeps.append, backoff=0.01).get_json("/x")
    assert sleeps == [30.0]


@pytest.mark.parametrize("value", ["a day", "-1", "nan", "inf"])
def test_bad_cap_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("GAPLINE_MAX_RETRY_AFTER", value)
    with pytest.raises(dl.PolygonError, match="GAPLINE_MAX_RETRY_AFTER|max_retry_after"):
        client_for(limited_then_ok("1"))
