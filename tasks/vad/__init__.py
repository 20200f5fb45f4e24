"""Voice activity detection by the pretrained silero-vad model on svd-synth's songs."""
