"""The GraphQL lab (notebooks/02-graphql.ipynb): graphene 3 over HTTP and a WebSocket."""
