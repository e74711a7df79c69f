"""Training, data-loading and prediction throughput of nuclei, and what Lightning costs.

Not part of the installed package: run from a checkout, through the command lines in
``scripts/`` (``benchmark.py``, ``benchmark_predict.py``, ``benchmark_heap.py``).

``scripts/benchmark.py``, on one network (``build_unet(depth, base)``), input size and batch
(:class:`~benchmarks.common.Settings`), measures:

* ``lightning_vs_plain``: train images/s of the Lightning path (``SegmentationTask`` under a
  ``Trainer`` as ``nuclei-train`` runs it: its training step with train metrics,
  ``train/loss`` logged to TensorBoard every 10 steps, the Rich progress bar) and of a plain
  PyTorch loop (:class:`~benchmarks.plain.PlainLoop`: same network, Adam, loss and
  in-memory batches, nothing else), interleaved in one process: ``chunk`` Lightning steps,
  then as many plain steps, ``repeats`` times. ``train_ratio`` is the median of the chunk
  ratios, so that both sides see the same machine state and a busy neighbour on a shared
  machine hurts them alike;
* ``plain`` and ``lightning`` alone, each in its own process: their peak memory;
* ``lightning_compiled`` (``speed.compile``), ``lightning_channels_last``
  (``speed.channels_last``), ``lightning_bf16`` (``precision=bf16-mixed``): train images/s,
  and the first step's time (compilation, from an empty inductor cache);
* ``speed_options``: the plain loop under each speed option, interleaved step by step;
* ``loader``: images/s of the real ``NucleiDataModule`` train loader (its defaults, the
  synthetic set), without a model; ``loader_ratio`` = loader / Lightning train images/s;
* ``predict_eager`` / ``predict_compiled`` (alone) and ``predict_eager_vs_compiled``
  (alternated): megapixels/s of :func:`nuclei.inference.windows.tiled_predict` on a
  ``predict_size`` square image (after a warm-up call, which compiles).

Every measurement runs in its own subprocess (:mod:`benchmarks.runner`; peak resident
memory is per process). Timing starts after ``warmup`` steps.

Modules: :mod:`~benchmarks.common` (settings, measurement names, workload, clock),
:mod:`~benchmarks.plain` and :mod:`~benchmarks.train` (the measurements without and with
Lightning), :mod:`~benchmarks.runner` (subprocesses, summary, table),
:mod:`~benchmarks.predict` and :mod:`~benchmarks.memory` (``scripts/benchmark_predict.py``:
windows vs whole-image forwards, postprocessing, finishing, the whole ``nuclei-predict``).
"""
