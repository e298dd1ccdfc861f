"""The HTTP API (``/api/v1``): thin routes that parse, authorise and call services."""
