"""Who is asking: bearer tokens from trusted issuers, the development issuer, signing in and
browser sessions."""
