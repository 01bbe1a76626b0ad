"""Use cases over the stores: keys and organizations, querying requests. No web framework here."""
