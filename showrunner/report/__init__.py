"""The dry-run report of a compiled plan: text, JSON and a self-contained HTML page."""
