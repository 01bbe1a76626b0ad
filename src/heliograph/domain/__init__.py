"""Pure types and rules: usage, request records, filters. No I/O happens here."""
