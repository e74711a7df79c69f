"""nuclei: cell-nuclei segmentation on DSB2018 with PyTorch Lightning and Hydra."""

__version__ = "0.1.0"
