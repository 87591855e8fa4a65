"""Hot reload: watching the show file and its includes while the show plays (watch.py) and
handing each new version to the player (apply.py)."""
