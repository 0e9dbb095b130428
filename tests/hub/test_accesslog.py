"""The access log never carries a query string (a GraphQL document in a URL can hold a
child's name and date of birth)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from uvicorn.logging import AccessFormatter

from hub.app import create_app
from hub.settings import Settings
from hub.telemetry import accesslog


def test_access_log_lines_of_the_hub_hold_the_path_without_its_query_string(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    create_app(Settings(data_dir=tmp_path))  # installs the filter, as `mash-hub serve` does
    logger = logging.getLogger(accesslog.ACCESS_LOGGER)
    secret = "/graphql?query=%7Bchild(name%3A%22Ava%20Thompson%22%2C%20dob%3A%222016-03-14%22)%7D"
    with caplog.at_level(logging.INFO, logger=accesslog.ACCESS_LOGGER):
        logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", secret, "1.1", 200)
        logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "POST", "/graphql", "1.1", 200)
    lines = [AccessFormatter(use_colors=False).format(r) for r in caplog.records]
    assert lines[0].endswith('"GET /graphql?… HTTP/1.1" 200')
    assert lines[1].endswith('"POST /graphql HTTP/1.1" 200')
    assert not any("Ava" in line or "2016" in line for line in lines)


def test_filter_is_installed_once_however_many_apps_are_built(tmp_path: Path) -> None:
    create_app(Settings(data_dir=tmp_path))
    create_app(Settings(data_dir=tmp_path))
    filters = logging.getLogger(accesslog.ACCESS_LOGGER).filters
    assert sum(isinstance(f, accesslog.DropQueryStrings) for f in filters) == 1
