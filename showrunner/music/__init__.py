"""Musical time: tempo readings, the tempo map, quantize grids and beat-locked shapes (pure, no I/O)."""
