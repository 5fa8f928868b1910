// Type definitions for dbx's Node.js binding (handwritten; checked by
// `npm run typecheck`, which compiles test/types-check.ts with tsc).

/// <reference types="node" />

/** A value dbx binds as a parameter or stores (see the README's table). */
export type DbxParam =
  | null
  | undefined
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Date
  | JsonValue;

/** A value as dbx returns it in a row. */
export type DbxValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Buffer
  | Date
  | JsonValue;

export type JsonValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

export type Row = Record<string, DbxValue>;
export type Document = { [key: string]: JsonValue };

export interface ConnectOptions {
  /** Each operation's timeout, in milliseconds. */
  timeout?: number;
  /** How long connecting may take, in milliseconds. */
  connectTimeout?: number;
  /** The most connections the pool may open. */
  poolMaxSize?: number;
}

export interface Health {
  backend: string;
  latencyMs: number;
  /** 'closed', 'open' or 'halfopen'. */
  breaker: string;
  pool?: { maxSize: number; size: number; idle: number; inUse: number; waiting: number };
}

export class Sql {
  private constructor();
  /** Rows as plain objects; `$1..$N` bound parameters. */
  query(sql: string, params?: readonly DbxParam[] | null): Promise<Row[]>;
  /** Rows affected. */
  execute(sql: string, params?: readonly DbxParam[] | null): Promise<number>;
  /** Several statements separated by `;`, without parameters. */
  executeScript(script: string): Promise<void>;
}

export interface SetOptions {
  /** Time to live in milliseconds. */
  ttl?: number;
}

export class Kv {
  private constructor();
  get(key: string): Promise<Buffer | null>;
  /** A string is stored as UTF-8; `options` may be the TTL in milliseconds. */
  set(key: string, value: Uint8Array | string, options?: SetOptions | number): Promise<void>;
  /** True if the key existed. */
  delete(key: string): Promise<boolean>;
  exists(key: string): Promise<boolean>;
  /** The new value: a number, a bigint beyond 2^53. */
  incr(key: string, delta?: number | bigint): Promise<number | bigint>;
  /** Set a TTL (milliseconds) on an existing key; true if it exists. */
  expire(key: string, ttl: number): Promise<boolean>;
  /** Every key starting with `prefix`, sorted. */
  scan(prefix?: string): Promise<string[]>;
}

export interface FindOptions {
  sort?: Document;
  projection?: Document;
  limit?: number;
  skip?: number;
}

export interface UpdateResult {
  matched: number;
  modified: number;
  upsertedId: JsonValue;
}

export class Collection {
  private constructor();
  readonly name: string;
  insertOne(doc: Document): Promise<JsonValue>;
  insertMany(docs: Document[]): Promise<JsonValue[]>;
  find(filter?: Document | null, options?: FindOptions): Promise<Document[]>;
  findOne(filter?: Document | null): Promise<Document | null>;
  count(filter?: Document | null): Promise<number>;
  updateOne(filter: Document, update: Document): Promise<UpdateResult>;
  updateMany(filter: Document, update: Document): Promise<UpdateResult>;
  deleteOne(filter: Document): Promise<number>;
  deleteMany(filter: Document): Promise<number>;
  drop(): Promise<void>;
}

export class Docs {
  private constructor();
  collection(name: string): Collection;
}

/** A non-negative integer or a UUID string. */
export type PointId = number | bigint | string;

export interface Point {
  id: PointId;
  vector: number[];
  payload?: Document | null;
}

export interface VectorRecord {
  id: number | bigint | string;
  payload: Document | null;
  vector: number[] | null;
}

export interface Hit extends VectorRecord {
  score: number;
}

export interface SearchOptions {
  /** dbx's JSON filter, e.g. { must: [{ key: 'kind', match: { value: 'a' } }] }. */
  filter?: Document;
  scoreThreshold?: number;
  /** Default true. */
  withPayload?: boolean;
  /** Default false. */
  withVectors?: boolean;
}

export type Distance = 'cosine' | 'dot' | 'euclid' | 'manhattan' | (string & {});

export class VectorCollection {
  private constructor();
  readonly name: string;
  create(dimension: number, distance?: Distance): Promise<void>;
  /** True if this call created it. */
  createIfMissing(dimension: number, distance?: Distance): Promise<boolean>;
  /** True if it existed. */
  drop(): Promise<boolean>;
  upsert(points: Point[]): Promise<void>;
  search(vector: number[] | Float32Array | Float64Array, limit?: number, options?: SearchOptions): Promise<Hit[]>;
  get(ids: PointId[], options?: { withPayload?: boolean; withVectors?: boolean }): Promise<VectorRecord[]>;
  delete(ids: PointId[]): Promise<void>;
  count(filter?: Document | null): Promise<number>;
}

export class Vectors {
  private constructor();
  collection(name: string): VectorCollection;
  list(): Promise<string[]>;
}

/** A connected database. */
export class Dbx {
  private constructor();
  static connect(url: string, options?: ConnectOptions): Promise<Dbx>;
  /** 'sqlite', 'redis', 'postgresql', 'mongodb' or 'qdrant'. */
  readonly backend: string;
  readonly closed: boolean;
  /** Throws `Unsupported` when the backend has no SQL. */
  readonly sql: Sql;
  readonly kv: Kv;
  readonly docs: Docs;
  readonly vectors: Vectors;
  health(): Promise<Health>;
  /** Idempotent; true unless it gave up waiting for operations in flight. */
  close(): Promise<boolean>;
}

export type ErrorKind =
  | 'invalid_config'
  | 'invalid_input'
  | 'unsupported'
  | 'connect'
  | 'auth'
  | 'timeout'
  | 'pool_timeout'
  | 'circuit_open'
  | 'not_found'
  | 'query'
  | 'conflict'
  | 'wrong_type'
  | 'out_of_range'
  | 'decode'
  | 'closed'
  | 'other';

export const ERROR_KINDS: readonly ErrorKind[];

export interface DbxErrorProps {
  kind?: ErrorKind;
  transient?: boolean;
  backend?: string | null;
  operation?: string | null;
  code?: string | null;
  cause?: unknown;
}

/** Any dbx failure. */
export class DbxError extends Error {
  constructor(message?: string, props?: DbxErrorProps);
  /** dbx's ErrorKind name; stable. */
  kind: ErrorKind;
  /** Whether retrying may succeed. */
  transient: boolean;
  /** 'postgresql', 'redis'... when known. */
  backend: string | null;
  /** The operation that failed ('query', 'get'...) when known. */
  operation: string | null;
  /** The server's error code (a SQLSTATE such as '23505') when known. */
  code: string | null;
}

export class InvalidConfig extends DbxError { kind: 'invalid_config'; }
export class InvalidInput extends DbxError { kind: 'invalid_input'; }
export class Unsupported extends DbxError { kind: 'unsupported'; }
export class ConnectError extends DbxError { kind: 'connect'; }
export class AuthError extends DbxError { kind: 'auth'; }
export class Timeout extends DbxError { kind: 'timeout'; }
export class PoolTimeout extends DbxError { kind: 'pool_timeout'; }
export class CircuitOpen extends DbxError { kind: 'circuit_open'; }
export class NotFound extends DbxError { kind: 'not_found'; }
export class QueryError extends DbxError { kind: 'query'; }
export class Conflict extends DbxError { kind: 'conflict'; }
export class WrongType extends DbxError { kind: 'wrong_type'; }
export class OutOfRange extends DbxError { kind: 'out_of_range'; }
export class DecodeError extends DbxError { kind: 'decode'; }
export class Closed extends DbxError { kind: 'closed'; }
export class OtherError extends DbxError { kind: 'other'; }
