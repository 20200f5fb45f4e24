"""Singing-voice detection: front-end, Schlüter–Lehner CNN, synthetic songs, training."""
