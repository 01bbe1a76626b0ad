"""Heliograph: an LLM gateway and observability platform that speaks Helicone's protocol."""

__version__ = "0.1.0"
