"""One module per page (or group of pages): each reads through the services and renders."""
