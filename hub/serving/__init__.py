"""One GraphQL operation over HTTP: running it, what it costs and the errors that say what to
do."""
