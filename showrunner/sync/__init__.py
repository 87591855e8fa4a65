"""Tempo sources and their wiring into a run: Ableton Link, Scope's tempo sync, taps and OSC, the
fixed bpm; `sources.build_source` picks one, `runner.TempoRunner` runs it for a show."""
