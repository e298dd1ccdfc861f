"""One module per resource of the ``/api/v1`` API."""
