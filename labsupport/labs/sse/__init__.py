"""The Server-Sent Events lab (notebooks/05-sse.ipynb): a resumable event stream."""
