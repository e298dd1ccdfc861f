"""Data shapes of the backend: table models and the public schemas built on them."""
