"""Error codes the hub means to show clients; anything else is masked as INTERNAL_ERROR."""

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
