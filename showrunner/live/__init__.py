"""Playing a plan live: clock, scheduling, opening hours, journal, resume state and the player."""
