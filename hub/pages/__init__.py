"""The hub's server-rendered web pages: the GraphQL explorer, the manager's page and the IG
page, their templates and charts."""
