"""Exercises of notebooks/02-graphql.ipynb, each checked through a live GraphQL server."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from typing import Any

import requests
from graphql import ExecutionResult, FragmentDefinitionNode, OperationDefinitionNode, parse
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from ... import database
from ...database import Post, User, count_statements, db
from ...engine import NotAttempted, Unmet, cases, exercise, expect
from ..rest import server as rest
from . import server as graphql_api
from .execution import subscribe_query

NOTEBOOK = "02-graphql"


def _post(server, query, variables=None):
    """POST as a GraphQL-over-HTTP client does: a refused request comes back as a 4xx."""
    response = requests.post(f"{server.url}/graphql", timeout=5,
                             headers={"Accept": graphql_api.GRAPHQL_RESPONSE},
                             json={"query": query, "variables": variables})
    return response, response.json()


def _truth(query: str, variables: dict[str, Any] | None = None,
           **context_options: Any) -> dict[str, Any]:
    """What the lab's own schema answers, run in-process: what a check compares against."""
    result = graphql_api.run_query(query, variables, **context_options)
    if result.errors or result.data is None:
        raise RuntimeError(f"the check's own query failed: {result.errors}")
    return result.data


def _first_error(body) -> str:
    errors = body.get("errors") or []
    return errors[0]["message"] if errors else ""


# --- 1. ask for exactly what the screen shows ---------------------------------

def profile_card_query() -> str:
    """The profile card: the user's name and the titles of their 3 newest posts."""
    return """
    query ProfileCard($id: ID!) {
      user(id: $id) {
        name
        posts(limit: 3) {
          title
        }
      }
    }
    """


def _drawn_profiles(draw) -> list[str]:
    """Two users with at least 3 posts, drawn so a hard-coded id cannot pass."""
    database.ready(False)
    try:
        authors = [id for id in sorted(set(db.session.scalars(select(Post.author_id))))
                   if len(db.session.scalars(select(Post.id).where(Post.author_id == id))
                          .all()) >= 3]
    finally:
        db.session.remove()
    return [str(id) for id in draw.sample(authors, 2)]


@exercise(
    "graphql.exact-query",
    title="Write the query that fetches exactly what a screen shows",
    notebook=NOTEBOOK,
    hints=[
        "Declare the variable in the operation: query ProfileCard($id: ID!) { ... }.",
        "Ask for user(id: $id) and inside it only name and posts.",
        "User.posts takes a limit argument, newest first; inside each post ask only for title.",
    ],
    reference=profile_card_query,
)
def check_exact_query(profile_card_query):
    query = profile_card_query()
    if not isinstance(query, str) or not query.strip():
        raise NotAttempted("profile_card_query returns no query text")
    with graphql_api.start(name="graphql-check", fresh_data=False) as server:
        sizes = []
        for user_id in _drawn_profiles(cases()):
            truth = _truth("query($id: ID!) { user(id: $id) { name posts { title } } }",
                           {"id": user_id})
            wanted = {"name": truth["user"]["name"], "posts": truth["user"]["posts"][:3]}
            response, body = _post(server, query, {"id": user_id})
            expect("errors" not in body,
                   f"the server refused the query: {_first_error(body)}")
            extra = sorted(set(body.get("data") or {}) - {"user"})
            expect(not extra, f"the card needs one root field, user; the query also asks for "
                              f"{', '.join(extra)}")
            user = (body.get("data") or {}).get("user")
            if not isinstance(user, dict):
                raise Unmet(f"with $id = {user_id!r} expected a user, got "
                            f"{body.get('data')!r}: does the query use $id?")
            extra = sorted(set(user) - {"name", "posts"})
            expect(not extra, f"the card shows only the name and post titles; the query also "
                              f"asks for {', '.join(extra)}")
            expect(user.get("name") == wanted["name"],
                   f"with $id = {user_id!r} expected {wanted['name']!r}, got {user.get('name')!r}"
                   ": is the id hard-coded instead of taken from $id?")
            posts = user.get("posts") or []
            extra = sorted({key for post in posts for key in post} - {"title"})
            expect(not extra, f"each post on the card shows only its title; the query also "
                              f"asks for {', '.join(extra)}")
            expect(len(posts) == 3, f"the card shows the 3 newest posts, the query got "
                                    f"{len(posts)}")
            expect(posts == wanted["posts"], f"expected the 3 newest posts {wanted['posts']}, "
                                             f"got {posts}")
            sizes.append(len(response.content))
    with rest.start(name="rest-check", fresh_data=False, rate_limit=None) as api:
        rest_bytes = sum(len(requests.get(f"{api.url}{path}", timeout=5).content)
                         for path in ("/api/v1/users/101", "/api/v1/posts?limit=100"))
    return (f"{sizes[0]} bytes in one request; REST needs 2 requests and {rest_bytes} bytes "
            "for the same card")


# --- 2. a mutation that reports bad input -------------------------------------

UPDATE = ("mutation($id: ID!, $input: UpdateUserInput!) "
          "{ updateUser(id: $id, input: $input) { name email } }")


@exercise(
    "graphql.partial-update",
    title="A partial update that reports bad input as GraphQL errors",
    notebook=NOTEBOOK,
    hints=[
        "changes holds only the fields the client sent; a sent field may be \"\" or None.",
        "validate_user(changes, partial=True) returns {field: [messages]} for what is wrong.",
        "Raise GraphQLError(message, extensions={\"code\": \"BAD_USER_INPUT\", ...}): a plain "
        "Exception is a server bug and the client sees only INTERNAL_SERVER_ERROR.",
        "Only when nothing is wrong, setattr(user, field, value) for each field sent.",
    ],
    reference=graphql_api.apply_user_update,
)
def check_partial_update(apply_user_update):
    with graphql_api.start(name="graphql-check", fresh_data=False,
                           user_update=apply_user_update) as server:
        _, created = _post(server, 'mutation { createUser(input: {name: "Check Me", '
                                   'email: "check.me@example.com"}) { id } }')
        id = created["data"]["createUser"]["id"]
        try:
            _check_updates(server, id)
        finally:
            _post(server, "mutation($id: ID!) { deleteUser(id: $id) }", {"id": id})
    return "fields not sent kept, \"\" and null refused with BAD_USER_INPUT, valid updates applied"


def _check_updates(server, id):
    def update(changes):
        return _post(server, UPDATE, {"id": id, "input": changes})[1]

    def current():
        return _post(server, "query($id: ID!) { user(id: $id) { name email } }",
                     {"id": id})[1]["data"]["user"]

    body = update({"name": "Renamed"})
    if body.get("data") and body["data"]["updateUser"]["name"] == "Check Me" \
            and current()["name"] == "Check Me":
        raise NotAttempted("sending a new name changed nothing")
    expect("errors" not in body, f"sending a valid name gave an error: {_first_error(body)}")
    expect(current() == {"name": "Renamed", "email": "check.me@example.com"},
           f"after sending only a name, expected the email unchanged; the user is {current()}")
    draw = cases()
    for changes, field in (({"name": ""}, "name"), ({"name": None}, "name"),
                           ({"email": "not-an-email"}, "email"), ({"email": None}, "email"),
                           ({"name": draw.choice([" ", "   ", "\t\n"])}, "name"),
                           ({"email": draw.choice(["eve@example", "eve @example.com",
                                                   "eve@@example.com"])}, "email"),
                           ({"name": "N" * draw.randint(101, 130)}, "name")):
        before = current()
        body = update(changes)
        errors = body.get("errors") or []
        expect(errors, f"sent {changes}: got no error, and the user is now {current()}: "
                       "bad input must be reported, not silently ignored or stored")
        code = errors[0].get("extensions", {}).get("code")
        expect(code == "BAD_USER_INPUT",
               f"sent {changes}: the error's code is {code!r}, expected 'BAD_USER_INPUT' "
               "(a plain Exception reaches the client as INTERNAL_SERVER_ERROR)")
        expect(field in errors[0]["message"],
               f"sent {changes}: the message should name the field {field!r}, got "
               f"{errors[0]['message']!r}")
        expect(current() == before, f"sent {changes}: the user changed to {current()}")
    body = update({"email": "checked@example.com"})
    expect(current()["email"] == "checked@example.com",
           f"sending a valid email should change it; got {body}")


# --- 3. a DataLoader batch function --------------------------------------------

USERS_AND_POSTS = "{ users(limit: 25) { id posts { id } } }"


def _authors_of(batch) -> list[list[int]]:
    return [[post.author_id for post in posts] for posts in batch]


@exercise(
    "graphql.dataloader",
    title="A DataLoader batch function: every user's posts in one statement",
    notebook=NOTEBOOK,
    hints=[
        "One statement for all the ids: select(Post).where(Post.author_id.in_(author_ids)).",
        "Order newest first: .order_by(Post.created_at.desc(), Post.id.desc()).",
        "Return one list per id, in the order of author_ids (an empty list for an author "
        "without posts): group the rows in a dict keyed by author_id first.",
    ],
    reference=graphql_api.posts_by_author,
)
def check_dataloader(posts_by_author):
    database.ready(False)
    try:
        batch = asyncio.run(posts_by_author([102, 99_999, 101]))
    finally:
        db.session.remove()
    if batch is None:
        raise NotAttempted("posts_by_author returns None")
    _check_reads_afresh(posts_by_author, 102)
    draw = cases()
    added, imported_for = _backdate_posts(draw)
    try:
        return _check_batches(posts_by_author, draw, imported_for)
    finally:
        database.delete_posts(added)


def _backdate_posts(draw) -> tuple[list[int], int]:
    """Posts added now but dated in the past (some tying with an author's other posts):
    their ids do not follow their timestamps, as in any real table. Returns their ids and
    an author whose posts are now out of id order (the first post is always dated earlier)."""
    posts = list(db.session.scalars(select(Post)))
    added = []
    for n, post in enumerate(draw.sample(posts, 6)):
        minutes = draw.choice([7, 90]) if n == 0 else draw.choice([0, 0, 7, 90])
        added.append(Post(title="Backdated", content="Imported from an older system",
                          author_id=post.author_id,
                          created_at=post.created_at - dt.timedelta(minutes=minutes)))
    db.session.add_all(added)
    db.session.commit()
    ids, author = [post.id for post in added], added[0].author_id
    db.session.remove()
    return ids, author


def _check_batches(posts_by_author, draw, imported_for: int) -> str:
    authors = sorted(set(db.session.scalars(select(Post.author_id))) - {imported_for})
    users = sorted(db.session.scalars(select(User.id)))
    db.session.remove()
    silent = [u for u in users if u not in authors and u != imported_for]
    ids = [imported_for] + draw.sample(authors, 3) + silent[:1] + [99_999]
    while ids in (sorted(ids), sorted(ids, reverse=True)):  # an order no sort can stand for
        draw.shuffle(ids)
    try:
        batch = asyncio.run(posts_by_author(ids))
        newest = {id: [post.id for post in db.session.scalars(
            select(Post).where(Post.author_id == id)
            .order_by(Post.created_at.desc(), Post.id.desc()))] for id in ids}
        got_ids = [[post.id for post in posts] for posts in batch] \
            if isinstance(batch, list) else None
    finally:
        db.session.remove()
    got = f"{len(batch)} lists" if isinstance(batch, list) else type(batch).__name__
    expect(isinstance(batch, list) and len(batch) == len(ids),
           f"posts_by_author({ids}) must return one list per id, in their order, an empty "
           f"list for an id without posts: {len(ids)} lists; got {got}")
    authors = _authors_of(batch)
    for index, id in enumerate(ids):
        if not newest[id]:
            expect(authors[index] == [], f"user {id} has no posts: list {index} of "
                                         f"posts_by_author({ids}) must be empty, got the posts "
                                         f"of authors {authors[index]}: keep the order of the "
                                         "ids, an empty list for an id without posts")
            continue
        expect(authors[index] and set(authors[index]) == {id},
               f"list {index} of posts_by_author({ids}) must hold the posts of user "
               f"{id}, got posts by {authors[index]}: keep the order of the ids")
        expect(got_ids is not None and got_ids[index] == newest[id],
               f"user {id}'s posts newest first (created_at, then id) are {newest[id]}, got "
               f"{got_ids[index] if got_ids else None}: some posts were imported with older "
               "timestamps, so ids do not follow created_at")
    truth = _truth(USERS_AND_POSTS, dataloaders=False)
    with (graphql_api.start(name="graphql-check", fresh_data=False,
                            posts_loader=posts_by_author) as server,
          count_statements() as statements):
        _, body = _post(server, USERS_AND_POSTS)
    expect("errors" not in body, f"the query failed: {_first_error(body)}")
    for got, want in zip(body["data"]["users"], truth["users"], strict=True):
        expect(got == want, f"user {want['id']} should have posts "
                            f"{[p['id'] for p in want['posts']]} (newest first), got "
                            f"{[p['id'] for p in got['posts']]}")
    expect(len(statements) == 2,
           f"{len(statements)} SQL statements for 25 users and their posts; expected 2 "
           "(one for the users, one for all their posts)")
    return (f"posts_by_author({ids}) in order; 25 users and their posts in 2 statements, "
            "each user with their own posts newest first")


def _check_reads_afresh(posts_by_author, author: int) -> None:
    """A post written after an earlier batch must be in the next one: a DataLoader caches
    for one request; a batch function that caches across calls serves stale lists. (A batch
    of another shape is left for the checks that follow to explain.)"""
    post = Post(title="Written since", content="A post the last batch could not have seen",
                author_id=author)
    db.session.add(post)
    db.session.commit()
    new_id = post.id
    db.session.remove()
    try:
        before = asyncio.run(posts_by_author([author]))
        got = [getattr(p, "id", None) for p in before[0]] \
            if isinstance(before, list) and len(before) == 1 and isinstance(before[0], list) \
            else None
    finally:
        db.session.remove()
        database.delete_posts([new_id])
    expect(got is None or not got or new_id in got,
           f"user {author} wrote post {new_id} after your last batch, and posts_by_author"
           f"([{author}]) did not return it: read the table on every call; a DataLoader caches "
           "for one request, a cache kept across calls (a module-level dict) serves stale "
           "posts")


# --- 4. the depth limit ----------------------------------------------------------

_DEPTH_CASES = [
    ("{ users { name } }", 2, "two nested fields"),
    ("{ users { posts { comments { id } } } }", 4, "four nested fields"),
    ("{ user(id: 1) { ...on User { posts { id } } } }", 3,
     "an inline fragment (it is not a field: it adds no level)"),
    ("{ users { ...P } } fragment P on User { posts { comments { author { name } } } }", 5,
     "fields inside a fragment spread"),
    ("{ __typename users { __typename id } }", 2, "__typename (introspection is not counted)"),
]


def _drawn_depth_cases(draw) -> list[tuple[str, int, str]]:
    """Nesting the learner has not seen: chains of fragments inside fragments, an inline
    fragment among them, one fragment spread at two depths, and aliases."""
    links = draw.randint(2, 4)
    names = [f"F{draw.randrange(100, 999)}x{n}" for n in range(links)]
    fragments = []
    for n, name in enumerate(names):
        on, field = ("User", "posts") if n % 2 == 0 else ("Post", "author")
        inner = f"...{names[n + 1]}" if n + 1 < links else "id"
        if n == 1 and draw.random() < 0.5:
            inner = f"... on {'User' if on == 'Post' else 'Post'} {{ {inner} }}"
        fragments.append(f"fragment {name} on {on} {{ {field} {{ {inner} }} }}")
    chain = f"{{ users {{ ...{names[0]} }} }} " + " ".join(fragments)
    alias = draw.choice(["a", "them", "people"])
    twice = (f"{{ {alias}: users {{ ...P }} user(id: 1) {{ posts {{ author {{ ...P }} }} }} }} "
             "fragment P on User { posts { id } }")
    return [(chain, links + 2, f"{links} fragments, each spread inside the one before"),
            (twice, 5, "fragment P spread at two depths (it is not a cycle: measure it "
                       "again; keep `seen` per path, not for the whole query)")]


def _measure(selection_depth, query):
    document = parse(query)
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return selection_depth(operation.selection_set, fragments)


@exercise(
    "graphql.depth-limit",
    title="Measure a query's depth, fragments included, for a depth-limit rule",
    notebook=NOTEBOOK,
    hints=[
        "Walk selection_set.selections; each is a FieldNode, an InlineFragmentNode or a "
        "FragmentSpreadNode (isinstance tells which; so does .kind: 'field', "
        "'inline_fragment' or 'fragment_spread').",
        "A field is one level plus the depth of its own selection_set (None for a leaf); "
        "fields named __something are introspection: skip them.",
        "A fragment spread adds no level: measure fragments[selection.name.value].selection_set.",
        "A fragment may spread itself: keep the names you are expanding in `seen` and do not "
        "expand one twice.",
    ],
    reference=graphql_api.selection_depth,
)
def check_depth_limit(selection_depth):
    if _measure(selection_depth, "{ users { name } }") is None:
        raise NotAttempted("selection_depth returns None")
    for query, depth, what in _DEPTH_CASES:
        got = _measure(selection_depth, query)
        expect(got == depth, f"{what}: {query} is {depth} deep, measured {got}")
    for query, depth, what in _drawn_depth_cases(cases()):
        got = _measure(selection_depth, query)
        expect(got == depth, f"{what}: {query} is {depth} deep, measured {got}")
    cyclic = "{ users { ...A } } fragment A on User { posts { author { ...A } } }"
    try:
        _measure(selection_depth, cyclic)
    except RecursionError:
        raise Unmet("fragment A spreads itself and your function recursed forever: keep the "
                    "fragments being expanded in `seen` and skip those") from None
    with graphql_api.start(name="graphql-check", fresh_data=False, max_depth=3,
                           depth_measure=selection_depth) as server:
        response, body = _post(server, "{ users { posts { title } } }")
        expect(response.status_code == 200, f"with a limit of 3, a 3-deep query was refused: "
                                            f"{_first_error(body)}")
        deep = "{ users { ...P } } fragment P on User { posts { comments { id } } }"
        response, body = _post(server, deep)
        expect(response.status_code == 400 and "nests 4 levels" in _first_error(body),
               f"with a limit of 3, a 4-deep query through a fragment should be refused with "
               f"400, got {response.status_code}")
    return "depth measured through fields, inline fragments and spreads; the live limit holds"


# --- 5. a graphql-transport-ws client ---------------------------------------------

def collect_posts(ws_url: str, author_id: str, count: int) -> list[str]:
    """Subscribe to postAdded for one author; return the titles of the next ``count`` posts."""
    with connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")],
                 open_timeout=5) as ws:
        ws.send(json.dumps({"type": "connection_init"}))
        if json.loads(ws.recv(timeout=5))["type"] != "connection_ack":
            raise ConnectionError("the server did not acknowledge connection_init")
        query = "subscription($author: ID!) { postAdded(authorId: $author) { title } }"
        ws.send(json.dumps({"id": "1", "type": "subscribe",
                            "payload": {"query": query, "variables": {"author": author_id}}}))
        titles: list[str] = []
        while len(titles) < count:
            message = json.loads(ws.recv(timeout=5))
            if message["type"] == "next":
                titles.append(message["payload"]["data"]["postAdded"]["title"])
        ws.send(json.dumps({"id": "1", "type": "complete"}))
    return titles


def _drawn_posts(draw) -> tuple[str, int, list[tuple[str, str]]]:
    """An author, a count and a stream of posts by them and others, drawn at run time."""
    author = str(draw.randrange(101, 126))
    others = [str(id) for id in range(101, 126) if str(id) != author]
    count = draw.randint(2, 4)
    tag = draw.randrange(1000, 9999)
    posts = [(draw.choice(others), f"not yours {tag}")]
    for n in range(count + 1):
        posts.append((author, f"post {n + 1} of {author} ({tag})"))
        if draw.random() < 0.6:
            posts.append((draw.choice(others), f"someone else's {n} ({tag})"))
    return author, count, posts


def _within(seconds, condition) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@exercise(
    "graphql.ws-client",
    title="A graphql-transport-ws client that subscribes, filters on the server, completes",
    notebook=NOTEBOOK,
    hints=[
        "connect(ws_url, subprotocols=[\"graphql-transport-ws\"]) as ws, then send "
        "{\"type\": \"connection_init\"} and wait for {\"type\": \"connection_ack\"}.",
        "Subscribe with {\"id\": \"1\", \"type\": \"subscribe\", \"payload\": {\"query\": ..., "
        "\"variables\": ...}}; let postAdded(authorId: ...) filter on the server.",
        "Each event is {\"type\": \"next\", \"payload\": {\"data\": ...}}; count only those, "
        "with a timeout on every recv.",
        "When you have enough, send {\"id\": \"1\", \"type\": \"complete\"} and close the socket "
        "(leaving the with block closes it).",
    ],
    reference=collect_posts,
    timeout=15,
)
def check_ws_client(collect_posts):
    bus = graphql_api.posts_bus
    outcome: dict = {}
    author, count, posts = _drawn_posts(cases())
    wanted = [title for by, title in posts if by == author][:count]

    def run():
        try:
            outcome["titles"] = collect_posts(server.ws_url, author, count)
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    sent: list[Any] = []
    with graphql_api.start(name="graphql-check", fresh_data=False,
                           subscriber=_recording(sent)) as server:
        before = bus.listening()
        client = threading.Thread(target=run, daemon=True)
        client.start()
        subscribed = _within(5, lambda: bus.listening() > before or not client.is_alive())
        if "error" in outcome:
            raise _explain(outcome["error"])
        if not client.is_alive():
            if outcome.get("titles") is None:
                raise NotAttempted("collect_posts returned None without subscribing")
            raise Unmet(f"collect_posts returned {outcome['titles']!r} before any post was "
                        "created: wait for 'next' messages")
        expect(subscribed, "after 5 s the server still had no subscription from your client")
        try:
            _create_posts(server, posts)
            client.join(5)
        finally:
            _delete_posts_titled([title for _, title in posts])
        if "error" in outcome:
            raise _explain(outcome["error"])
        expect(not client.is_alive(), f"collect_posts(url, {author!r}, {count}) had not returned "
                                      f"5 s after user {author}'s posts were created")
        titles = outcome["titles"]
        expect(isinstance(titles, list) and all(isinstance(t, str) for t in titles),
               f"expected a list of titles, got {titles!r}: count only 'next' messages "
               "(connection_ack and pong are not events)")
        expect(titles == wanted,
               f"expected {wanted!r} (the next {count} posts of user {author}), got "
               f"{titles!r}: let the server filter with postAdded(authorId: ...)")
        others = [title for by, title in posts if by != author]
        leaked = [event for event in sent if any(title in json.dumps(event) for title in others)]
        expect(not leaked, f"the server sent your client {len(leaked)} posts by other users "
                           f"(e.g. {leaked[0] if leaked else ''}) for it to throw away: let "
                           "the server filter, postAdded(authorId: $author), so only user "
                           f"{author}'s posts cross the wire")
        expect(_within(2, lambda: bus.listening() == before),
               "collect_posts returned but its subscription is still open on the server: send "
               "complete, and close the connection")
    return f"connection_init, subscribe with a server-side filter, {count} events, complete"


def _recording(sent: list[Any]):
    """The lab's subscriber, noting every event it sends (what crosses the wire)."""
    async def subscriber(query, variables=None, operation_name=None):
        outcome = await subscribe_query(query, variables, operation_name)
        if isinstance(outcome, ExecutionResult):
            return outcome
        stream = outcome

        async def noted():
            try:
                async for result in stream:
                    sent.append(result.formatted)
                    yield result
            finally:
                await stream.aclose()
        return noted()
    return subscriber


def _create_posts(server, posts) -> None:
    for author_id, title in posts:
        _post(server, 'mutation($a: ID!, $t: String!) { createPost(input: '
                      '{title: $t, content: "x", authorId: $a}) { id } }',
              {"a": author_id, "t": title})


def _delete_posts_titled(titles) -> None:
    """Undo what the check created, so the learner's data stays as it was."""
    for post in db.session.scalars(select(Post).where(Post.title.in_(titles))):
        db.session.delete(post)
    db.session.commit()
    db.session.remove()


def _explain(error: BaseException) -> Unmet:
    if isinstance(error, ConnectionClosed) and error.rcvd is not None:
        return Unmet(f"the server closed the connection: {error.rcvd.code} {error.rcvd.reason}"
                     " (the graphql-transport-ws rules are in section 6)")
    if isinstance(error, TimeoutError):
        return Unmet("your client waited for a message that never came (TimeoutError): "
                     "which message did it expect?")
    return Unmet(f"your code raised {type(error).__name__}: {error}")
