//! Models with PyTorch parameter names (`shared/reference/models.py`); checkpoints.
