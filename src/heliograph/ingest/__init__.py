"""From "request captured" to "row stored": beside the hot path, never in it."""
