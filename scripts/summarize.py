"""Compare the runs of a sweep: python scripts/summarize.py SWEEP_DIR (see nuclei.summary)."""

from nuclei.summary import main

if __name__ == "__main__":
    raise SystemExit(main())
