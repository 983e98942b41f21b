"""Real datasets: download once into the data dir, verify, and read into tensors."""
