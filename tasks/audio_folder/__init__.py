"""A task from a folder of audio files, a labels CSV and a TorchScript model (or a plug-in file)."""
