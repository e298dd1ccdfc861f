"""``python -m backend``: serve the API with settings from ``SHOTBANK_*`` variables."""

from backend.main import serve

if __name__ == "__main__":
    serve()
