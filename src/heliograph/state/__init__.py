"""Shared mutable state of the gateway (rate-limit buckets): in this process, or in Redis so that
several gateway processes share it."""
