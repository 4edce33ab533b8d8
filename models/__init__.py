"""Model definitions for the offline converter (PyTorch); never imported by the device runtime."""
