"""The access log without query strings.

uvicorn's access log line holds the request's full path; a query string there can carry a
GraphQL document with a child's name and date of birth (`GET /graphql?query=...`). This
filter rewrites each access record's path to the path alone, whatever the client sent.
"""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"


class DropQueryStrings(logging.Filter):
    """Cuts the query string off the path argument of uvicorn's access log records
    (`client, method, path, http version, status`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, _, query = args[2].partition("?")
            if query:
                record.args = (*args[:2], path + "?…", *args[3:])
        return True


def install() -> None:
    """Attach the filter to uvicorn's access logger once per process."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, DropQueryStrings) for f in logger.filters):
        logger.addFilter(DropQueryStrings())
