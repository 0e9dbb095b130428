"""Error codes the hub means to show clients; anything else is masked as INTERNAL_ERROR."""

from graphql import GraphQLError

CLIENT_CODES = frozenset(
    {
        "BAD_USER_INPUT",
        "CONFLICT",
        "FORBIDDEN",
        "NOT_FOUND",
        "PURPOSE_REQUIRED",
        "UNAUTHENTICATED",
    }
)


class ClientError(GraphQLError):
    """An error the client is meant to see (`code` one of CLIENT_CODES). The message must
    hold no personal data."""

    def __init__(self, message: str, code: str) -> None:
        assert code in CLIENT_CODES
        super().__init__(message, extensions={"code": code})
