"""Domain services: where the backend decides. They raise ``backend.errors``, never HTTP."""
