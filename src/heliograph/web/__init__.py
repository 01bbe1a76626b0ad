"""The web dashboard: server-rendered pages on the API port, signed in with the session cookie,
reading through the same services as the REST API and changing things only through it."""
