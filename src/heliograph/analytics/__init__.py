"""The ClickHouse-family analytics store: one set of SQL run by chDB or a ClickHouse server."""
