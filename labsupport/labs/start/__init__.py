"""The start-here lab (notebooks/00-start-here.ipynb): its first exercise, on the REST server."""
