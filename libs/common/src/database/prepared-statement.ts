/**
 * A hot statement as a named prepared statement: PostgreSQL parses and plans it once per connection
 * instead of on every call (an unnamed statement is parsed, analysed and planned each time it runs).
 * For the statements every upload and every stored file runs (docs/benchmarks.md, small files).
 *
 * TypeORM's `query()` hands its query to the pg driver unchanged, and pg takes a `{ name, text }` config
 * in place of a text (its values from the call's parameters), so the statement keeps TypeORM's result
 * shapes and its QueryFailedError (constraint checks such as `violates` rely on it). `toString` gives the
 * text wherever TypeORM treats the query as one (its query log, error messages).
 *
 * The text of a name must never change within a process (pg refuses a name prepared with another text),
 * and a prepared statement must not select `*`: a migration that adds a column would change its result
 * type under the prepared plan ("cached plan must not change result type").
 */
export function preparedStatement(name: string, text: string): string {
  if (!/^tess_[a-z0-9_]+$/.test(name)) throw new Error(`Invalid prepared statement name "${name}"`);
  // pg copies the config before it adds a call's values, so one statement object serves every call.
  return { name, text, toString: () => text } as unknown as string;
}
