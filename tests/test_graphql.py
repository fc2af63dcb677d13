"""The GraphQL lab server: GraphQL over HTTP, errors, limits, DataLoaders, mutations."""

from __future__ import annotations

import asyncio
import gc
import json
import warnings

import pytest
import requests
from graphql import ExecutionResult
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labsupport import database, graphql_api
from labsupport.database import User, db


@pytest.fixture(scope="module")
def server(graphql_server):
    return graphql_server


GRAPHQL_RESPONSE = "application/graphql-response+json"
#: What a client of the GraphQL-over-HTTP spec sends: request errors come back as 4xx.
MODERN = {"Accept": GRAPHQL_RESPONSE}


def post(server, query, variables=None, headers=None, **body):
    return requests.post(f"{server.url}/graphql", timeout=5, headers=headers,
                         json={"query": query, "variables": variables, **body})


def run(query, variables=None, **context_options):
    """The answer a client would get, computed in-process through the lab's own execution
    path (the depth limit, DataLoaders, masked resolver errors) without HTTP."""
    return graphql_api.run_query(query, variables, **context_options).formatted


@pytest.fixture
def fresh():
    """The sample data as it ships, for a test that writes or counts."""
    database.reset()


def codes(answer):
    body = answer if isinstance(answer, dict) else answer.json()
    return [error["extensions"]["code"] for error in body["errors"]]


# --- queries ------------------------------------------------------------------

def test_basic_query_returns_exactly_the_fields_asked(fresh):
    assert run('{ user(id: "123") { id name email } }') == {"data": {"user": {
        "id": "123", "name": "John Doe", "email": "john.doe@example.com"}}}


def test_nested_query_with_variables(fresh):
    query = """query GetUserPosts($userId: ID!, $postLimit: Int!) {
      user(id: $userId) { name posts(limit: $postLimit) { title createdAt } } }"""
    user = run(query, {"userId": "101", "postLimit": 2})["data"]["user"]
    assert user["name"] == "Ada Lovelace"
    assert [post["title"] for post in user["posts"]] == ["Post 51", "Post 41"]


def test_get_serves_queries_with_json_variables(server):
    response = requests.get(f"{server.url}/graphql", timeout=5, params={
        "query": "query($id: ID!) { user(id: $id) { name } }", "variables": '{"id": "102"}'})
    assert response.json() == {"data": {"user": {"name": "Alan Turing"}}}


def test_operation_name_picks_one_operation(server):
    document = 'query A { user(id: "101") { name } } query B { user(id: "102") { name } }'
    response = post(server, document, operationName="B")
    assert response.json()["data"]["user"]["name"] == "Alan Turing"
    assert codes(post(server, document)) == ["BAD_USER_INPUT"]


def test_missing_user_is_null_not_an_error(fresh):
    assert run('{ user(id: "999") { name } }') == {"data": {"user": None}}


def test_introspection_works_despite_the_depth_limit(server):
    from graphql import get_introspection_query

    response = post(server, get_introspection_query())
    assert response.status_code == 200
    names = {t["name"] for t in response.json()["data"]["__schema"]["types"]}
    assert {"User", "Post", "Comment", "CreateUserInput", "Subscription"} <= names


# --- request errors: 4xx, the {"errors": [...]} shape, no "data" -----------------

@pytest.mark.parametrize("query, code, message", [
    ("{ user(id: ", "GRAPHQL_PARSE_FAILED", "Syntax Error"),
    ('{ user(id: "1") { password } }', "GRAPHQL_VALIDATION_FAILED", "Cannot query field"),
    ("{ user { name } }", "GRAPHQL_VALIDATION_FAILED", "argument 'id'"),
    ("{ users { posts { comments { author { posts { comments { author { posts { id } } } } } } }"
     " } }", "GRAPHQL_VALIDATION_FAILED", "nests 9 levels deep; the limit is 6"),
])
def test_bad_documents_are_400_with_a_code(server, query, code, message):
    response = post(server, query, headers=MODERN)
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == code
    assert message in body["errors"][0]["message"]


def test_depth_hidden_in_fragments_is_counted(server):
    query = """{ ...A } fragment A on Query { users { ...B } }
      fragment B on User { posts { comments { author { posts { comments { author {
        posts { id } } } } } } } }"""
    response = post(server, query, headers=MODERN)
    assert response.status_code == 400
    assert "nests 9 levels" in response.json()["errors"][0]["message"]


def test_wrong_variable_type_is_400(server):
    response = post(server, "query($n: Int!) { users(limit: $n) { id } }", {"n": "ten"},
                    headers=MODERN)
    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]
    assert "Int cannot represent" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("body, content_type, status, message", [
    ("not json", "application/json", 400, "not valid JSON"),
    ("[1, 2]", "application/json", 400, "must be a JSON object"),
    ('{"variables": {}}', "application/json", 400, "non-empty string in 'query'"),
    ('{"query": "{ users { id } }", "variables": [1]}', "application/json", 400,
     "variables must be a JSON object"),
    ('{"query": "{ users { id } }", "operationName": 5}', "application/json", 400,
     "operationName must be a string"),
    ("{ users { id } }", "text/plain", 415, "Content-Type: application/json"),
    ('{"query": "' + "x" * 200_000 + '"}', "application/json", 413, "too large"),
])
def test_malformed_requests_get_graphql_errors(server, body, content_type, status, message):
    response = requests.post(f"{server.url}/graphql", data=body, timeout=5,
                             headers={"Content-Type": content_type})
    assert response.status_code == status
    assert message in response.json()["errors"][0]["message"]


def test_other_methods_and_paths_get_graphql_errors(server):
    put = requests.put(f"{server.url}/graphql", timeout=5)
    assert put.status_code == 405
    assert set(put.headers["Allow"].split(", ")) >= {"GET", "POST"}
    assert put.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    missing = requests.get(f"{server.url}/graphiql", timeout=5)
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_mutation_over_get_is_refused(server):
    response = requests.get(f"{server.url}/graphql", timeout=5, params={
        "query": 'mutation { deleteUser(id: "101") }'})
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert db.session.get(User, 101) is not None
    db.session.remove()


# --- GraphQL over HTTP: media types and the status codes that go with them ----------

REQUEST_ERRORS = {  # each stops the request before anything runs: no "data" entry
    "parse": ("{ user(id: ", None, "GRAPHQL_PARSE_FAILED"),
    "validation": ('{ user(id: "1") { password } }', None, "GRAPHQL_VALIDATION_FAILED"),
    "operation": ('query A { user(id: "1") { id } } query B { user(id: "2") { id } }', None,
                  "BAD_USER_INPUT"),
    "variables": ("query($n: Int!) { users(limit: $n) { id } }", {"n": None}, "BAD_USER_INPUT"),
}


def media_type(response):
    return response.headers["Content-Type"].split(";")[0]


@pytest.mark.parametrize("kind", REQUEST_ERRORS)
@pytest.mark.parametrize("accept, answered_as, status", [
    (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE, 400),
    ("application/json", "application/json", 200),
    (None, "application/json", 200),
])
def test_request_errors_are_4xx_only_in_graphql_response_json(server, kind, accept,
                                                              answered_as, status):
    query, variables, code = REQUEST_ERRORS[kind]
    response = post(server, query, variables, headers={"Accept": accept})
    assert (response.status_code, media_type(response)) == (status, answered_as)
    assert response.headers["Content-Type"].endswith("; charset=utf-8")
    body = response.json()
    assert "data" not in body and codes(response) == [code]


@pytest.mark.parametrize("accept, status", [(GRAPHQL_RESPONSE, 400), ("application/json", 200)])
def test_a_subscription_over_http_is_a_request_error_pointing_to_the_websocket(server, accept,
                                                                              status):
    response = post(server, "subscription { postAdded { id } }", headers={"Accept": accept})
    assert response.status_code == status
    assert "data" not in response.json() and codes(response) == ["BAD_REQUEST"]
    assert "graphql-transport-ws" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("accept, answered_as", [
    (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
    ("application/json", "application/json"),
    ("*/*", "application/json"),
    (None, "application/json"),
    ("application/*", "application/json"),
    (f"{GRAPHQL_RESPONSE}; charset=utf-8, application/json; charset=utf-8", GRAPHQL_RESPONSE),
    (f"application/json, {GRAPHQL_RESPONSE}", "application/json"),
    (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
    (f"application/json;q=0.5, {GRAPHQL_RESPONSE};q=0.8", GRAPHQL_RESPONSE),
    (f"{GRAPHQL_RESPONSE}, */*", GRAPHQL_RESPONSE),
    ("text/html, */*;q=0.1", "application/json"),
    ("application/json;q=0, */*", GRAPHQL_RESPONSE),
    (f"application/*;q=0.2, */*, {GRAPHQL_RESPONSE};q=0.5", GRAPHQL_RESPONSE),
])
def test_the_accept_header_picks_the_media_type(server, accept, answered_as):
    response = post(server, '{ user(id: "101") { name } }', headers={"Accept": accept})
    assert (response.status_code, media_type(response)) == (200, answered_as)
    assert response.json() == {"data": {"user": {"name": "Ada Lovelace"}}}


@pytest.mark.parametrize("accept", ["text/html", f"application/json;q=0, {GRAPHQL_RESPONSE};q=0"])
def test_accepting_neither_media_type_is_406(server, accept):
    response = post(server, '{ user(id: "101") { name } }', headers={"Accept": accept})
    assert response.status_code == 406
    assert codes(response) == ["NOT_ACCEPTABLE"]


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json"])
def test_field_errors_and_null_data_are_200_in_both_media_types(server, accept):
    partial = post(server, '{ user(id: "101") { name } post(id: "abc") { id } }',
                   headers={"Accept": accept})
    assert partial.status_code == 200 and partial.json()["data"]["user"]
    nulled = post(server, 'mutation { createUser(input: {name: " ", email: "x"}) { id } }',
                  headers={"Accept": accept})
    assert nulled.status_code == 200 and nulled.json()["data"] is None
    assert codes(nulled) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json"])
@pytest.mark.parametrize("body, status", [
    ('{ "not a JSON', 400),
    ('{"qeury": "{ __typename }"}', 400),
    ('{"query": "{ __typename }", "variables": [7]}', 400),
    ('{"query": "{ __typename }", "extensions": "yes"}', 400),
    ('{"query": "{ __typename }", "extensions": {"some": "value"}}', 200),
    ('{"query": "{ __typename }", "variables": null, "operationName": null, "extensions": null}',
     200),
])
def test_requests_that_are_not_well_formed_are_400_in_both(server, accept, body, status):
    response = requests.post(f"{server.url}/graphql", data=body, timeout=5, headers={
        "Content-Type": "application/json", "Accept": accept})
    assert (response.status_code, media_type(response)) == (status, accept)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json; charset=latin-1"])
def test_a_body_that_is_not_utf8_json_is_415(server, content_type):
    response = requests.post(f"{server.url}/graphql", data=b'{"query": "{ __typename }"}',
                             timeout=5, headers={"Content-Type": content_type})
    assert response.status_code == 415
    assert codes(response) == ["UNSUPPORTED_MEDIA_TYPE"]


def test_get_takes_json_variables_and_extensions_and_an_empty_operation_name(server):
    response = requests.get(f"{server.url}/graphql", timeout=5, headers=MODERN, params={
        "query": "query($id: ID!) { user(id: $id) { name } }", "variables": '{"id": "102"}',
        "extensions": '{"some": "value"}', "operationName": ""})
    assert (response.status_code, media_type(response)) == (200, GRAPHQL_RESPONSE)
    assert response.json() == {"data": {"user": {"name": "Alan Turing"}}}


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json"])
def test_a_mutation_over_get_is_405_in_both_media_types(server, accept):
    response = requests.get(f"{server.url}/graphql", timeout=5, headers={"Accept": accept},
                            params={"query": 'mutation { deleteUser(id: "101") }'})
    assert (response.status_code, response.headers["Allow"]) == (405, "POST")


# --- execution errors: 200, data and errors side by side ----------------------------

@pytest.mark.parametrize("query, message", [
    ("{ users(limit: 1000) { id } }", "limit must be between 1 and 100, got 1000"),
    ("{ users(limit: 0) { id } }", "limit must be between 1 and 100, got 0"),
    ('{ user(id: "abc") { id } }', "id must be a positive whole number, got 'abc'"),
    ('{ posts(authorId: "x") { id } }', "authorId must be a positive whole number"),
    ('{ user(id: "101") { posts(limit: -1) { id } } }', "limit must be between 1 and 100"),
])
def test_bad_arguments_are_bad_user_input(fresh, query, message):
    answer = run(query)
    assert codes(answer) == ["BAD_USER_INPUT"]
    assert message in answer["errors"][0]["message"]


def test_resolver_bugs_are_masked_as_internal_errors():
    async def broken_loader(author_ids):
        raise ZeroDivisionError("secret detail")

    with graphql_api.start(name="graphql-broken", fresh_data=False,
                           posts_loader=broken_loader) as broken:
        response = post(broken, '{ user(id: "101") { name posts { id } } }')
        logged = broken.logs()
    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert error == {"message": "Internal server error", "locations": error["locations"],
                     "path": ["user", "posts"], "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
    assert "secret" not in response.text
    assert any("resolver failed at user.posts (ZeroDivisionError: secret detail)" in line
               for line in logged), logged


# --- explicit null for a nullable argument: the default, or BAD_USER_INPUT; never a 500 ---

#: Every nullable argument (and input field) of the schema: a query sending it as ``%s``, the
#: variable type it takes, and the query that asks for the default (None: null is refused).
NULLABLE = {
    ("Query", "users", "limit"): ("{ users(limit: %s) { id } }", "Int", "{ users { id } }"),
    ("Query", "users", "offset"): ("{ users(offset: %s) { id } }", "Int", "{ users { id } }"),
    ("Query", "posts", "authorId"): ("{ posts(authorId: %s) { id } }", "ID", "{ posts { id } }"),
    ("Query", "posts", "limit"): ("{ posts(limit: %s) { id } }", "Int", "{ posts { id } }"),
    ("User", "posts", "limit"): ('{ user(id: "101") { posts(limit: %s) { id } } }', "Int",
                                 '{ user(id: "101") { posts { id } } }'),
    ("User", "orders", "limit"): ('{ user(id: "101") { orders(limit: %s) { id } } }', "Int",
                                  '{ user(id: "101") { orders { id } } }'),
    ("UpdateUserInput", "name", None): (
        'mutation { updateUser(id: "101", input: {name: %s}) { name } }', "String", None),
    ("UpdateUserInput", "email", None): (
        'mutation { updateUser(id: "101", input: {email: %s}) { email } }', "String", None),
    ("Subscription", "postAdded", "authorId"): (
        "subscription { postAdded(authorId: %s) { id } }", "ID", None),
}


def nullable_arguments(schema):
    """(type, field, argument) for every nullable argument; (input type, field, None) for
    every nullable input field."""
    from graphql import GraphQLInputObjectType, GraphQLObjectType, is_non_null_type

    found = set()
    for named in schema.type_map.values():
        if named.name.startswith("__"):
            continue
        if isinstance(named, GraphQLObjectType):
            found |= {(named.name, name, arg) for name, field in named.fields.items()
                      for arg, value in field.args.items() if not is_non_null_type(value.type)}
        elif isinstance(named, GraphQLInputObjectType):
            found |= {(named.name, name, None) for name, field in named.fields.items()
                      if not is_non_null_type(field.type)}
    return found


def test_every_nullable_argument_is_checked_with_null():
    assert nullable_arguments(graphql_api.schema.graphql_schema) == set(NULLABLE)


HTTP_NULLABLE = {key: value for key, value in NULLABLE.items() if key[0] != "Subscription"}


@pytest.mark.parametrize("as_variable", [False, True], ids=["literal", "variable"])
@pytest.mark.parametrize("key", HTTP_NULLABLE, ids=lambda key: ".".join(filter(None, key)))
def test_null_for_a_nullable_argument_means_the_default_or_bad_user_input(fresh, key,
                                                                           as_variable):
    template, type_name, default_query = NULLABLE[key]
    if as_variable:
        operation = "mutation" if template.startswith("mutation") else "query"
        query = f"{operation}($v: {type_name}) " + template.removeprefix(operation) % "$v"
        body = run(query, {"v": None})
    else:
        body = run(template % "null")
    if default_query is None:
        assert codes(body) == ["BAD_USER_INPUT"], body
    else:
        assert "errors" not in body, body
        assert body == run(default_query)


@pytest.mark.parametrize("as_variable", [False, True], ids=["literal", "variable"])
def test_null_author_id_subscribes_to_every_author(as_variable):
    template, type_name, _ = NULLABLE[("Subscription", "postAdded", "authorId")]
    query = (f"subscription($v: {type_name}) " + template.removeprefix("subscription") % "$v"
             if as_variable else template % "null")

    async def main():
        stream = await graphql_api.subscribe_query(query, {"v": None} if as_variable else None)
        assert not isinstance(stream, ExecutionResult), stream
        next_event = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)
        result = await graphql_api.execute_query(
            'mutation { createPost(input: {title: "any author", content: "x", '
            'authorId: "107"}) { id } }')
        event = await asyncio.wait_for(next_event, 3)
        await stream.aclose()
        return result, event

    created, event = asyncio.run(main())
    assert event.errors is None
    assert event.data == {"postAdded": {"id": created.data["createPost"]["id"]}}
    db.session.remove()


# --- mutations --------------------------------------------------------------------

CREATE = "mutation($input: CreateUserInput!) { createUser(input: $input) { id name email } }"
UPDATE = ("mutation($id: ID!, $input: UpdateUserInput!) "
          "{ updateUser(id: $id, input: $input) { id name email } }")


def user_count():
    count = db.session.query(User).count()
    db.session.remove()
    return count


def test_create_user_validates_then_writes(fresh):
    before = user_count()
    bad = run(CREATE, {"input": {"name": " ", "email": "nope"}})
    assert codes(bad) == ["BAD_USER_INPUT"]
    assert set(bad["errors"][0]["extensions"]["fields"]) == {"name", "email"}
    assert user_count() == before
    good = run(CREATE, {"input": {"name": "Eve", "email": "Eve@Example.com"}})
    assert good["data"]["createUser"]["email"] == "eve@example.com"
    again = run(CREATE, {"input": {"name": "Eve 2", "email": "eve@example.com"}})
    assert codes(again) == ["CONFLICT"]
    assert user_count() == before + 1


def test_update_user_empty_name_is_an_error_not_ignored(fresh):
    """The document's ``if name:`` silently drops "": here it is reported."""
    answer = run(UPDATE, {"id": "104", "input": {"name": ""}})
    assert codes(answer) == ["BAD_USER_INPUT"]
    assert run('{ user(id: "104") { name } }')["data"]["user"]["name"] == \
        "Edsger Dijkstra"


def test_update_user_changes_only_what_was_sent(fresh):
    answer = run(UPDATE, {"id": "105", "input": {"name": "B. Liskov"}})
    assert answer["data"]["updateUser"] == {
        "id": "105", "name": "B. Liskov", "email": "barbara.liskov@example.com"}


def test_update_with_one_bad_field_changes_nothing(fresh):
    answer = run(UPDATE, {"id": "106", "input": {"name": "Don", "email": "bad"}})
    assert codes(answer) == ["BAD_USER_INPUT"]
    assert run('{ user(id: "106") { name } }')["data"]["user"]["name"] == \
        "Donald Knuth"


def test_update_missing_user_is_not_found(fresh):
    assert codes(run(UPDATE, {"id": "9999", "input": {"name": "X"}})) == ["NOT_FOUND"]


def test_delete_user_answers_true_then_false(fresh):
    created = run(CREATE, {"input": {"name": "Tmp", "email": "tmp@example.com"}})
    id = created["data"]["createUser"]["id"]
    delete = 'mutation($id: ID!) { deleteUser(id: $id) }'
    assert run(delete, {"id": id}) == {"data": {"deleteUser": True}}
    assert run(delete, {"id": id}) == {"data": {"deleteUser": False}}


def test_create_post_checks_its_author(fresh):
    query = "mutation($i: CreatePostInput!) { createPost(input: $i) { id author { name } } }"
    bad = run(query, {"i": {"title": "T", "content": "C", "authorId": "9999"}})
    assert codes(bad) == ["BAD_USER_INPUT"]
    assert "no user has id 9999" in bad["errors"][0]["message"]
    long = run(query, {"i": {"title": "T" * 201, "content": "C", "authorId": "123"}})
    assert "title must be at most 200 characters" in long["errors"][0]["message"]
    good = run(query, {"i": {"title": "T", "content": "C", "authorId": "123"}})
    assert good["data"]["createPost"]["author"] == {"name": "John Doe"}


# --- the N+1 problem, counted ----------------------------------------------------

USERS_AND_POSTS = "{ users(limit: 10) { name posts { title } } }"


def test_without_dataloaders_users_posts_is_one_plus_n_statements(fresh):
    with database.count_statements() as statements:
        answer = run(USERS_AND_POSTS, dataloaders=False)
    assert len(answer["data"]["users"]) == 10
    assert len(statements) == 1 + 10


def test_with_dataloaders_it_is_two_statements(fresh):
    with database.count_statements() as statements:
        answer = run(USERS_AND_POSTS)
    assert len(answer["data"]["users"]) == 10
    assert len(statements) == 2


def test_dataloader_batches_authors_of_comments_too(fresh):
    query = '{ posts(limit: 20) { author { name } comments { author { name } } } }'
    with database.count_statements() as statements:
        run(query)
    # one statement a level: posts; their authors and their comments (one batch each);
    # the comments' authors not already loaded (one batch)
    assert len(statements) == 4


def test_sync_execution_of_a_dataloader_resolver_gives_null():
    """Why the lab executes asynchronously: graphene's sync execute cannot await."""
    import asyncio

    async def run():
        context = graphql_api.new_context()
        return graphql_api.schema.execute('{ user(id: "101") { posts { id } } }',
                                          context_value=context)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "coroutine ... never awaited"
        result = asyncio.run(run())
        data, message = result.data, result.errors[0].message
        del result
        gc.collect()
    assert data == {"user": None}
    assert "Expected Iterable, but did not find one for field 'User.posts'" in message


# --- fuzzing ----------------------------------------------------------------------

FIXTURE_OK = [HealthCheck.function_scoped_fixture]  # the server fixture is module-scoped

@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
@given(query=st.text(max_size=80))
def test_any_query_text_gets_a_graphql_answer_never_a_500(server, query):
    response = post(server, query)
    assert response.status_code in (200, 400)
    body = response.json()
    assert "data" in body or body["errors"][0]["extensions"]["code"]


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
@given(id=st.text(max_size=30) | st.integers().map(str))
def test_any_id_is_a_user_or_null_or_bad_user_input(server, id):
    response = post(server, "query($id: ID!) { user(id: $id) { name } }", {"id": id})
    assert response.status_code == 200
    assert all(error["extensions"]["code"] == "BAD_USER_INPUT"
               for error in response.json().get("errors", []))


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
@given(variables=st.dictionaries(st.sampled_from(["input", "id", "x"]), _json, max_size=3))
def test_any_variables_to_a_mutation_never_500_nor_half_applied(server, variables):
    before = user_count()
    response = post(server, UPDATE, variables)
    assert response.status_code in (200, 400), response.text
    errors = response.json().get("errors")
    if errors:
        assert all(error["extensions"]["code"] != "INTERNAL_SERVER_ERROR" for error in errors)
    assert user_count() == before


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(body=st.binary(max_size=60) | _json.map(lambda v: json.dumps(v).encode()))
def test_any_body_gets_4xx_or_an_answer(server, body):
    response = requests.post(f"{server.url}/graphql", data=body, timeout=5,
                             headers={"Content-Type": "application/json"})
    assert response.status_code in (200, 400)
    assert response.json()["errors"] if response.status_code == 400 else True


def test_starting_again_replaces_the_previous_server_and_its_websocket():
    from labsupport.harness import running

    first = graphql_api.start(name="graphql-again")
    second = graphql_api.start(name="graphql-again", fresh_data=False)
    try:
        assert not first.running and not first.ws.running
        assert running()["graphql-again"] is second
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{first.url}/graphql", timeout=2)
        assert post(second, '{ user(id: "101") { name } }').status_code == 200
    finally:
        second.stop()
    assert not second.ws.running
    assert "graphql-again-ws" not in running()
