"""The REST lab (notebooks/01-rest.ipynb): the document's Flask user API, corrected."""
