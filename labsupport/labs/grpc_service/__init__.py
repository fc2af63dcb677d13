"""The gRPC lab (notebooks/03-grpc.ipynb): the document's UserService, corrected."""
