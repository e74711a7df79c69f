"""Lightning callbacks of a run: image grid, random states, safety, epoch log, image scores."""
