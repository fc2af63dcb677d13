// Audit a GraphQL server against the GraphQL-over-HTTP specification with the
// spec's own suite, graphql-http's auditServer.
//
//   node audit.mjs http://127.0.0.1:PORT/graphql
//
// Prints one JSON object: {"counts": {"ok": n, "notice": n, "warn": n, "error": n},
// "results": [{"id", "name", "status", "reason"?}, ...]}. A failed MUST is an
// "error", a failed SHOULD a "warn", a failed MAY a "notice".
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql endpoint URL>');
  process.exit(2);
}

const results = await auditServer({ url });
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const result of results) counts[result.status] += 1;
const report = results.map(({ id, name, status, reason }) => ({ id, name, status, reason }));
console.log(JSON.stringify({ counts, results: report }, null, 1));
