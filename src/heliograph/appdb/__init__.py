"""The application database (organizations, API keys): SQLAlchemy 2 on SQLite or PostgreSQL."""
