"""The long-polling lab (notebooks/06-long-polling.ipynb): a lossless notification hub."""
