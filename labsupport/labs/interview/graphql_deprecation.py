"""Q7 for GraphQL: no versions, a field marked ``@deprecated`` instead.

A small schema on the shared database where ``User.name`` is deprecated in
favour of ``User.displayName``. Serve it on the GraphQL lab's own server with
``graphql_api.start(served_schema=schema)``. Introspection shows the
deprecation to every client and tool; ``deprecated_usage`` is the check a
client's CI runs on its queries (graphql-core's ``NoDeprecatedCustomRule``).
"""

from __future__ import annotations

import graphene
from graphql import parse, validate
from graphql.validation import NoDeprecatedCustomRule

from ...database import User, db

__all__ = ["schema", "deprecated_usage", "DEPRECATED_FIELDS_QUERY"]

DEPRECATED_FIELDS_QUERY = """
{ __type(name: "User") { fields(includeDeprecated: true) {
    name isDeprecated deprecationReason } } }
"""


class UserType(graphene.ObjectType):
    class Meta:
        name = "User"

    id = graphene.ID(required=True)
    name = graphene.String(deprecation_reason="Use displayName: it may differ from the legal name.")
    display_name = graphene.String()
    email = graphene.String()

    def resolve_display_name(user: User, info) -> str:
        return user.name


class Query(graphene.ObjectType):
    user = graphene.Field(UserType, id=graphene.ID(required=True))

    def resolve_user(root, info, id: str) -> User | None:
        return db.session.get(User, int(id)) if id.isdigit() else None


schema = graphene.Schema(query=Query, auto_camelcase=True)


def deprecated_usage(query: str) -> list[str]:
    """The deprecated fields ``query`` uses, as graphql-core's validation reports them."""
    errors = validate(schema.graphql_schema, parse(query), [NoDeprecatedCustomRule])
    return [error.message for error in errors]
