"""One module per upstream API: where it lives and how to read model and usage from its bodies."""
