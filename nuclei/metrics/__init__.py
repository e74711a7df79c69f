"""Pixel metrics (pixel) and the DSB2018 instance metric (dsb)."""
