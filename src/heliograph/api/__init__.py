"""The REST API (FastAPI): translation between HTTP and services, nothing else."""
