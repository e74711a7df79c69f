"""Prediction: trained networks run on images, from arrays or files to labels and tables.

The forward pass: :mod:`~nuclei.inference.probabilities` (settings, size modes, device),
:mod:`~nuclei.inference.windows` and :mod:`~nuclei.inference.network_probe` (native
resolution within a memory budget), :mod:`~nuclei.inference.averaging` (ensembles,
test-time augmentation). The file pipeline: :mod:`~nuclei.inference.image_files` (reading),
:mod:`~nuclei.inference.output_files` (writing), :mod:`~nuclei.inference.output_folder`
(the folder, its lock and records), :mod:`~nuclei.inference.segment` and
:mod:`~nuclei.inference.postprocess_pool` (running it through a Lightning Trainer).
Measurement: :mod:`~nuclei.inference.measure` and :mod:`~nuclei.inference.label_statistics`.
"""
