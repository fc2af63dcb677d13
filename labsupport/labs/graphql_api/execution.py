"""Running GraphQL operations: the depth limit, then execution on the async path (where
DataLoaders batch), with unexpected errors masked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import graphene
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationRule,
    execute,
    get_operation_ast,
    parse,
    specified_rules,
    subscribe,
    validate,
)

from ... import database
from ...database import db
from .loaders import new_context
from .schema import posts_bus, schema

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())
log.propagate = False  # resolver failures never print into cells; servers log to their handle


MAX_DEPTH = 6


# --- validation: the depth limit ---------------------------------------------

def selection_depth(selection_set: SelectionSetNode | None,
                    fragments: dict[str, FragmentDefinitionNode],
                    seen: frozenset[str] = frozenset()) -> int:
    """How deep a selection set nests fields, following fragments.

    Each field adds one level; inline fragments and fragment spreads add
    none but are looked into. Introspection fields (``__schema``...) are not
    counted, and a fragment already being expanded is not expanded again.
    """
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue
            depth = 1 + selection_depth(selection.selection_set, fragments, seen)
        elif isinstance(selection, InlineFragmentNode):
            depth = selection_depth(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in seen or name not in fragments:
                continue
            depth = selection_depth(fragments[name].selection_set, fragments, seen | {name})
        else:
            continue
        deepest = max(deepest, depth)
    return deepest


def depth_limit_rule(max_depth: int = MAX_DEPTH, measure=selection_depth) -> type[ValidationRule]:
    """A validation rule refusing operations that nest deeper than ``max_depth``."""

    class DepthLimitRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            fragments = {definition.name.value: definition
                         for definition in self.context.document.definitions
                         if isinstance(definition, FragmentDefinitionNode)}
            depth = measure(node.selection_set, fragments)
            if depth > max_depth:
                name = f"Operation '{node.name.value}'" if node.name else "The operation"
                self.report_error(GraphQLError(
                    f"{name} nests {depth} levels deep; the limit is {max_depth}", node))

    return DepthLimitRule


# --- executing a request ------------------------------------------------------

def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    if not (error.extensions or {}).get("code"):
        error.extensions = {**(error.extensions or {}), "code": code}
    return error


def _coded(errors: list[GraphQLError], code: str) -> list[GraphQLError]:
    return [_with_code(error, code) for error in errors]


def _mask_unexpected(result: ExecutionResult, logger: logging.Logger = log) -> ExecutionResult:
    """Give every error a code; hide what a server bug says behind a generic message."""
    if not result.errors:
        return result
    errors = []
    for error in result.errors:
        original = error.original_error
        if original is not None and not isinstance(original, GraphQLError):
            logger.error("resolver failed at %s", ".".join(map(str, error.path or [])),
                         exc_info=original)
            db.session.rollback()
            error = GraphQLError("Internal server error", error.nodes, path=error.path,
                                 extensions={"code": "INTERNAL_SERVER_ERROR"})
        errors.append(_with_code(error, "BAD_USER_INPUT"))
    return ExecutionResult(result.data, errors)


def prepare(query: str, *, served_schema: graphene.Schema = schema,
            max_depth: int | None = MAX_DEPTH,
            measure=selection_depth) -> DocumentNode | list[GraphQLError]:
    """Parse and validate ``query``: its document, or the errors that refuse it.

    ``max_depth=None`` validates with the standard rules only (no depth limit).
    """
    try:
        document = parse(query)
    except GraphQLError as error:
        return _coded([error], "GRAPHQL_PARSE_FAILED")
    rules = list(specified_rules)
    if max_depth is not None:
        rules.append(depth_limit_rule(max_depth, measure))
    errors = validate(served_schema.graphql_schema, document, rules)
    return _coded(errors, "GRAPHQL_VALIDATION_FAILED") if errors else document


async def execute_query(
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
    *,
    context: dict | None = None,
    served_schema: graphene.Schema = schema,
    max_depth: int | None = MAX_DEPTH,
    depth_measure=selection_depth,
) -> ExecutionResult:
    """Parse, validate (standard rules plus the depth limit) and execute, awaiting
    async resolvers: this is the path on which DataLoaders batch."""
    document = prepare(query, served_schema=served_schema, max_depth=max_depth,
                       measure=depth_measure)
    if isinstance(document, list):
        return ExecutionResult(None, document)
    operation = get_operation_ast(document, operation_name)
    if operation is not None and operation.operation == OperationType.SUBSCRIPTION:
        return ExecutionResult(None, [GraphQLError(
            "Subscriptions stream over the WebSocket (graphql-transport-ws), not over HTTP",
            extensions={"code": "BAD_REQUEST"})])
    result = execute(served_schema.graphql_schema, document, variable_values=variables,
                     operation_name=operation_name,
                     context_value=context if context is not None else new_context())
    if not isinstance(result, ExecutionResult):
        result = await result
    return _mask_unexpected(result, (context or {}).get("logger", log))


def run_query(query: str, variables: dict[str, Any] | None = None,
              operation_name: str | None = None, **context_options: Any) -> ExecutionResult:
    """:func:`execute_query` from synchronous code (a thread with no running loop)."""

    async def main() -> ExecutionResult:
        try:
            return await execute_query(query, variables, operation_name,
                                       context=new_context(**context_options))
        finally:
            db.session.remove()

    return asyncio.run(main())


async def subscribe_query(query: str, variables: dict[str, Any] | None = None,
                          operation_name: str | None = None, *, context: dict | None = None
                          ) -> AsyncGenerator[ExecutionResult, None] | ExecutionResult:
    """Like :func:`execute_query` for a ``subscription``: an async iterator of results."""
    document = prepare(query)
    if isinstance(document, list):
        return ExecutionResult(None, document)
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation != OperationType.SUBSCRIPTION:
        with database.own_session():  # other operations run on this loop's thread meanwhile
            return await execute_query(query, variables, operation_name, context=context)
    stream = await subscribe(schema.graphql_schema, document, variable_values=variables,
                             operation_name=operation_name,
                             context_value=context if context is not None else {"bus": posts_bus})
    if isinstance(stream, ExecutionResult):
        return _mask_unexpected(stream)
    return _masked_stream(stream)


async def _masked_stream(
    stream: AsyncIterator[ExecutionResult],
) -> AsyncGenerator[ExecutionResult, None]:
    """Each event read and resolved in a database session of its own, then masked."""
    try:
        while True:
            with database.own_session():
                try:
                    result = _mask_unexpected(await anext(stream))
                except StopAsyncIteration:
                    return
            yield result
    finally:
        close = getattr(stream, "aclose", None)  # graphql-core's streams have one
        if close is not None:
            await close()
