"""Overrides for real training runs small enough for a 2-core CPU."""

# Small, fast settings for real training runs on 2 CPU cores.
FAST_TRAIN_OVERRIDES = [
    "trainer=cpu",
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
    "data.size.image_size=64",
    "data.loader.batch_size=4",
    "data.source.decode_workers=1",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]

SMALL_UNET_OVERRIDES = ["model.base_channels=8", "model.depth=3"]
