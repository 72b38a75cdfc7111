"""API errors with Toxiproxy's exact messages and HTTP status codes.

Every error the HTTP API reports is an :class:`ApiError`; its JSON form is
``{"error": message, "status": code}``, the body Toxiproxy sends.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class ApiError(Exception):
    """An error reported to an API client as ``{"error": ..., "status": ...}``."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object Toxiproxy writes for this error."""
        return {"error": self.message, "status": self.status}

    def wrap(self, detail: str) -> ApiError:
        """Return a copy whose message is ``"<message>: <detail>"`` (Toxiproxy's joinError)."""
        return ApiError(f"{self.message}: {detail}", self.status)


BAD_REQUEST_BODY = ApiError("bad request body", HTTPStatus.BAD_REQUEST)
MISSING_FIELD = ApiError("missing required field", HTTPStatus.BAD_REQUEST)
PROXY_NOT_FOUND = ApiError("proxy not found", HTTPStatus.NOT_FOUND)
PROXY_ALREADY_EXISTS = ApiError("proxy already exists", HTTPStatus.CONFLICT)
INVALID_STREAM = ApiError(
    "stream was invalid, can be either upstream or downstream", HTTPStatus.BAD_REQUEST
)
INVALID_TOXIC_TYPE = ApiError("invalid toxic type", HTTPStatus.BAD_REQUEST)
TOXIC_ALREADY_EXISTS = ApiError("toxic already exists", HTTPStatus.CONFLICT)
TOXIC_NOT_FOUND = ApiError("toxic not found", HTTPStatus.NOT_FOUND)


def internal(message: str) -> ApiError:
    """Return a 500 error, as Toxiproxy reports errors that carry no status (e.g. listen)."""
    return ApiError(message, HTTPStatus.INTERNAL_SERVER_ERROR)
