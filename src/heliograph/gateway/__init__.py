"""The hot path: authenticate, forward to the provider, stream the answer back, hand a record to
the sink. It knows the outside world only through the protocols in `ports.py`."""
