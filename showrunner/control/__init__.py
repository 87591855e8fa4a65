"""The operator's control surface: the command gate, HTTP API and page, OSC and the terminal."""
