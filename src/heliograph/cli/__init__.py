"""The `heliograph` command line: one module per command group."""
