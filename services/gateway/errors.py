"""Errors as OpenAI-shaped values: the HTTP status, the body the client gets and the error class the event records."""

from __future__ import annotations

from lightwire.error_classes import CONTEXT_OVERFLOW, TIMEOUT, UPSTREAM_ERROR  # noqa: F401 (the classes the gateway can tell)

# Beside the attribution taxonomy, the caller's own mistakes.
INVALID_REQUEST = "invalid_request"


class GatewayError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", *, param: str | None = None,
                 code: str | None = None, error_class: str = INVALID_REQUEST):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code
        self.error_class = error_class

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid(message: str, param: str | None = None, code: str | None = None) -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


def unknown_model(name: str, served: str) -> GatewayError:
    return GatewayError(404, f"The model `{name}` does not exist; this gateway serves `{served}`.", param="model", code="model_not_found")


def context_overflow(message: str) -> GatewayError:
    return GatewayError(400, message, param="messages", code="context_length_exceeded", error_class=CONTEXT_OVERFLOW)


def upstream_failed(message: str) -> GatewayError:
    return GatewayError(502, message, "api_error", code="upstream_error", error_class=UPSTREAM_ERROR)


def upstream_timeout(message: str = "the model did not answer in time") -> GatewayError:
    return GatewayError(504, message, "api_error", code="upstream_timeout", error_class=TIMEOUT)


def unauthenticated() -> GatewayError:
    return GatewayError(401, "Missing or wrong API key: send `Authorization: Bearer <key>`.", "invalid_request_error",
                        code="invalid_api_key")


def body_too_large(limit: int) -> GatewayError:
    return GatewayError(413, f"The request body is larger than this gateway accepts ({limit} bytes, LW_GATEWAY_MAX_REQUEST_BYTES).",
                        code="request_too_large")


def http_status(status: int, message: str) -> GatewayError:
    """A status the router chose (404 unknown route, 405 wrong method, ...), as an OpenAI error."""
    return GatewayError(status, message, "invalid_request_error" if status < 500 else "api_error",
                        code={404: "unknown_url", 405: "method_not_allowed"}.get(status))


def internal() -> GatewayError:
    return GatewayError(500, "The gateway failed to handle the request; see its log.", "api_error", code="internal_error",
                        error_class=UPSTREAM_ERROR)
