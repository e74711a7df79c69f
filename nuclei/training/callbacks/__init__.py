"""Lightning callbacks of a training run: image grid, random states, safety."""
