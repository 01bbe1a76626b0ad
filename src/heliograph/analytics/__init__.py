"""The ClickHouse-family analytics store: one set of SQL files run by chDB or a ClickHouse server."""
