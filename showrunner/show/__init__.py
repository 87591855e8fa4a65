"""The show file: its model, loading with exact positions, templating, lint and JSON Schema."""
