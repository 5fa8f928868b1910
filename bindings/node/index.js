'use strict';
// dbx for Node.js: one Promise API over SQLite, Redis, PostgreSQL, MongoDB
// and Qdrant. The native addon (Rust, napi-rs) does the work; this file
// loads it, groups its methods into db.sql / db.kv / db.docs / db.vectors
// and gives every failure its DbxError subclass. See README.md.

const path = require('node:path');

function loadNative() {
  const file = process.env.DBX_NODE_ADDON ||
    path.join(__dirname, `dbx.${process.platform}-${process.arch}.node`);
  try {
    return require(file);
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND') {
      throw new Error(`the dbx native addon ${file} is missing: build it with ` +
        '`npm run build` in bindings/node (needs a Rust toolchain)', { cause: e });
    }
    throw e;
  }
}

const native = loadNative();

// --- errors ----------------------------------------------------------------

/** Any dbx failure; `kind` is dbx's ErrorKind name ('timeout', 'not_found'...). */
class DbxError extends Error {
  constructor(message, props = {}) {
    super(message, props.cause === undefined ? undefined : { cause: props.cause });
    this.kind = props.kind || 'other';
    this.transient = Boolean(props.transient);
    this.backend = props.backend ?? null;
    this.operation = props.operation ?? null;
    this.code = props.code ?? null;
  }
}

// ErrorKind name -> class name, the same as the Python binding's.
const CLASS_OF_KIND = {
  invalid_config: 'InvalidConfig',
  invalid_input: 'InvalidInput',
  unsupported: 'Unsupported',
  connect: 'ConnectError',
  auth: 'AuthError',
  timeout: 'Timeout',
  pool_timeout: 'PoolTimeout',
  circuit_open: 'CircuitOpen',
  not_found: 'NotFound',
  query: 'QueryError',
  conflict: 'Conflict',
  wrong_type: 'WrongType',
  out_of_range: 'OutOfRange',
  decode: 'DecodeError',
  closed: 'Closed',
  other: 'OtherError',
};

const errors = { DbxError };
const classByKind = new Map();
for (const [kind, name] of Object.entries(CLASS_OF_KIND)) {
  // A named class per kind, so stack traces and util.inspect show it.
  const cls = ({ [name]: class extends DbxError {
    constructor(message, props = {}) { super(message, { ...props, kind }); }
  } })[name];
  Object.defineProperty(cls.prototype, 'name', { value: name, writable: true, configurable: true });
  errors[name] = cls;
  classByKind.set(kind, cls);
}
Object.defineProperty(DbxError.prototype, 'name', { value: 'DbxError', writable: true, configurable: true });

/** The error a native call failed with, as a DbxError subclass. */
function fix(e) {
  if (e instanceof DbxError) return e;
  if (e !== null && typeof e === 'object' && typeof e.kind === 'string' && e.name === 'DbxError') {
    // Made by the addon with kind/transient/backend/operation/code set:
    // keep the object (and its stack), give it its class.
    Object.setPrototypeOf(e, (classByKind.get(e.kind) || errors.OtherError).prototype);
    delete e.name; // inherit the class's name
    return e;
  }
  const message = e && e.message ? e.message : String(e);
  // napi-rs refused an argument of the wrong JavaScript type
  // (codes 'InvalidArg', 'StringExpected', 'NumberExpected'...).
  if (e && typeof e.code === 'string' && /^(InvalidArg|[A-Za-z]+Expected)$/.test(e.code)) {
    return new errors.InvalidInput(message, { cause: e });
  }
  return new errors.OtherError(message, { cause: e });
}

function rethrow(e) { throw fix(e); }

/** Runs a native call and returns its Promise, failures made DbxErrors. */
function call(thunk) {
  let p;
  try {
    p = thunk();
  } catch (e) {
    return Promise.reject(fix(e));
  }
  return p.then(undefined, rethrow);
}

function invalid(message) { return new errors.InvalidInput(message); }

function paramsOf(params) {
  if (params === undefined || params === null) return undefined;
  if (!Array.isArray(params)) throw invalid('params must be an array of values ($1..$N)');
  return params;
}

function objectOf(what, v, optional) {
  if (v === undefined || v === null) {
    if (optional) return undefined;
    throw invalid(`${what} is required`);
  }
  if (typeof v !== 'object' || Array.isArray(v) || Buffer.isBuffer(v)) {
    throw invalid(`${what} must be a plain object`);
  }
  return v;
}

function arrayOf(what, v) {
  if (!Array.isArray(v)) throw invalid(`${what} must be an array`);
  return v;
}

function optionsOf(options) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') throw invalid('options must be an object');
  return options;
}

// --- the API ---------------------------------------------------------------

class Sql {
  #n;
  constructor(n) { this.#n = n; }
  /** Rows as plain objects; $1..$N bound parameters. */
  query(sql, params) { return call(() => this.#n.query(sql, paramsOf(params))); }
  /** Rows affected. */
  execute(sql, params) { return call(() => this.#n.execute(sql, paramsOf(params))); }
  /** Several statements separated by `;`, without parameters. */
  executeScript(script) { return call(() => this.#n.executeScript(script)); }
}

class Kv {
  #n;
  constructor(n) { this.#n = n; }
  get(key) { return call(() => this.#n.kvGet(key)); }
  set(key, value, options) {
    return call(() => {
      if (typeof value !== 'string' && !(value instanceof Uint8Array)) {
        throw invalid('a key-value value must be a Buffer, a Uint8Array or a string');
      }
      const ttl = typeof options === 'number' ? options : optionsOf(options).ttl;
      return this.#n.kvSet(key, value, ttl ?? undefined);
    });
  }
  delete(key) { return call(() => this.#n.kvDelete(key)); }
  exists(key) { return call(() => this.#n.kvExists(key)); }
  incr(key, delta = 1) {
    return call(() => {
      if (typeof delta !== 'number' && typeof delta !== 'bigint') {
        throw invalid('delta must be a number or a BigInt');
      }
      return this.#n.kvIncr(key, delta);
    });
  }
  expire(key, ttl) { return call(() => this.#n.kvExpire(key, ttl)); }
  scan(prefix = '') { return call(() => this.#n.kvScan(prefix)); }
}

class Collection {
  #n;
  constructor(n, name) { this.#n = n; this.name = name; }
  insertOne(doc) { return call(() => this.#n.docInsertOne(this.name, objectOf('document', doc))); }
  insertMany(docs) { return call(() => this.#n.docInsertMany(this.name, arrayOf('documents', docs))); }
  find(filter, options) {
    return call(() => {
      const o = optionsOf(options);
      return this.#n.docFind(this.name, objectOf('filter', filter, true),
        objectOf('sort', o.sort, true), objectOf('projection', o.projection, true),
        o.limit ?? undefined, o.skip ?? undefined);
    });
  }
  findOne(filter) { return call(() => this.#n.docFindOne(this.name, objectOf('filter', filter, true))); }
  count(filter) { return call(() => this.#n.docCount(this.name, objectOf('filter', filter, true))); }
  updateOne(filter, update) {
    return call(() => this.#n.docUpdate(this.name, objectOf('filter', filter), objectOf('update', update), false));
  }
  updateMany(filter, update) {
    return call(() => this.#n.docUpdate(this.name, objectOf('filter', filter), objectOf('update', update), true));
  }
  deleteOne(filter) { return call(() => this.#n.docDelete(this.name, objectOf('filter', filter), false)); }
  deleteMany(filter) { return call(() => this.#n.docDelete(this.name, objectOf('filter', filter), true)); }
  drop() { return call(() => this.#n.docDrop(this.name)); }
}

class Docs {
  #n;
  constructor(n) { this.#n = n; }
  collection(name) {
    if (typeof name !== 'string' || name === '') throw invalid('a collection name must be a non-empty string');
    return new Collection(this.#n, name);
  }
}

class VectorCollection {
  #n;
  constructor(n, name) { this.#n = n; this.name = name; }
  create(dimension, distance = 'cosine') {
    return call(() => this.#n.vecCreate(this.name, dimension, distance, false)).then(() => undefined);
  }
  createIfMissing(dimension, distance = 'cosine') {
    return call(() => this.#n.vecCreate(this.name, dimension, distance, true));
  }
  drop() { return call(() => this.#n.vecDrop(this.name)); }
  upsert(points) { return call(() => this.#n.vecUpsert(this.name, arrayOf('points', points))); }
  search(vector, limit = 10, options) {
    return call(() => {
      const o = optionsOf(options);
      return this.#n.vecSearch(this.name, Array.from(arrayLike('vector', vector)), limit,
        objectOf('filter', o.filter, true), o.scoreThreshold ?? undefined,
        o.withPayload ?? true, o.withVectors ?? false);
    });
  }
  get(ids, options) {
    return call(() => {
      const o = optionsOf(options);
      return this.#n.vecGet(this.name, arrayOf('ids', ids), o.withPayload ?? true, o.withVectors ?? false);
    });
  }
  delete(ids) { return call(() => this.#n.vecDelete(this.name, arrayOf('ids', ids))); }
  count(filter) { return call(() => this.#n.vecCount(this.name, objectOf('filter', filter, true))); }
}

function arrayLike(what, v) {
  if (Array.isArray(v) || v instanceof Float32Array || v instanceof Float64Array) return v;
  throw invalid(`${what} must be an array of numbers`);
}

class Vectors {
  #n;
  constructor(n) { this.#n = n; }
  collection(name) {
    if (typeof name !== 'string' || name === '') throw invalid('a collection name must be a non-empty string');
    return new VectorCollection(this.#n, name);
  }
  list() { return call(() => this.#n.vecList()); }
}

function capability(n, name) {
  try {
    n.require(name);
  } catch (e) {
    throw fix(e);
  }
}

/** A connected database. */
class Dbx {
  #n;
  #sql; #kv; #docs; #vectors;

  constructor(n) {
    if (!(n instanceof native.NativeDbx)) {
      throw new TypeError('use `await Dbx.connect(url)` to make a Dbx');
    }
    this.#n = n;
  }

  /**
   * Connect to the database a URL names. Options (milliseconds):
   * { timeout, connectTimeout, poolMaxSize }.
   */
  static connect(url, options) {
    return call(() => {
      if (typeof url !== 'string') throw invalid('url must be a string');
      const o = optionsOf(options);
      return native.connect(url, o.timeout ?? undefined, o.connectTimeout ?? undefined,
        o.poolMaxSize ?? undefined);
    }).then((n) => new Dbx(n));
  }

  /** 'sqlite', 'redis', 'postgresql', 'mongodb' or 'qdrant'. */
  get backend() { try { return this.#n.backend; } catch (e) { throw fix(e); } }
  /** Whether close() was called. */
  get closed() { try { return this.#n.closed; } catch (e) { throw fix(e); } }

  /** SQL, or throws Unsupported. */
  get sql() { capability(this.#n, 'sql'); return (this.#sql ??= new Sql(this.#n)); }
  /** Key-value, or throws Unsupported. */
  get kv() { capability(this.#n, 'kv'); return (this.#kv ??= new Kv(this.#n)); }
  /** Documents, or throws Unsupported. */
  get docs() { capability(this.#n, 'docs'); return (this.#docs ??= new Docs(this.#n)); }
  /** Vector collections, or throws Unsupported. */
  get vectors() { capability(this.#n, 'vectors'); return (this.#vectors ??= new Vectors(this.#n)); }

  /** One real round trip: { backend, latencyMs, breaker, pool? }. */
  health() { return call(() => this.#n.health()); }

  /** Shut down gracefully (idempotent); true unless it gave up waiting for operations in flight. */
  close() { return call(() => this.#n.close()); }

  get [Symbol.toStringTag]() { return 'Dbx'; }
}

if (typeof Symbol.asyncDispose === 'symbol') {
  // `await using db = await Dbx.connect(url)` closes it at the end of the block.
  Dbx.prototype[Symbol.asyncDispose] = function asyncDispose() { return this.close().then(() => undefined); };
}

module.exports = { Dbx, ...errors, ERROR_KINDS: Object.freeze(Object.keys(CLASS_OF_KIND)) };
