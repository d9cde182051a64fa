"""TinyNet, a small image classifier in two files: its blocks (blocks.py) and the model (model.py)."""
