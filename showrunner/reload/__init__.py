"""Hot reload: watching the show file and its includes while the show plays."""
