"""Settings, database and other process-wide plumbing of the backend."""
