"""Segmentation networks (no training logic here)."""
