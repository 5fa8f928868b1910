//! The handles applications use: [`Docs`], [`Collection`] and
//! [`DocTransaction`], each method written once over every driver.

use super::*;

/// The document handle of a database: `db.docs()?`.
///
/// Cheap to clone. Pick a collection with [`collection`](Docs::collection).
///
/// ```no_run
/// # async fn demo(db: dbx_core::Database) -> dbx_core::Result<()> {
/// use dbx_core::serde_json::json;
/// let users = db.docs()?.collection("users");
/// let id = users.insert_one(&json!({"name": "Ada", "age": 36})).await?;
/// let ada = users.find_one(&json!({"_id": id})).await?;
/// users.update_one(&json!({"name": "Ada"}), &json!({"$inc": {"age": 1}})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Docs {
    store: Arc<dyn DocStore>,
    ctx: Arc<Ctx>,
}

impl fmt::Debug for Docs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Docs")
            .field("backend", &self.ctx.backend())
            .finish_non_exhaustive()
    }
}

impl Docs {
    pub(crate) fn new(store: Arc<dyn DocStore>, ctx: Arc<Ctx>) -> Self {
        Docs { store, ctx }
    }

    /// A handle on one collection. The name is checked by each operation.
    pub fn collection(&self, name: &str) -> Collection {
        Collection {
            docs: self.clone(),
            name: Arc::from(name),
        }
    }

    /// Start a multi-document transaction, or
    /// [`Unsupported`](ErrorKind::Unsupported) where the server has none.
    /// The statements of a transaction are never retried.
    pub async fn begin(&self) -> Result<DocTransaction> {
        let tx = self
            .ctx
            .run(Op::idempotent("docs.begin"), || self.store.begin())
            .await?;
        Ok(DocTransaction {
            tx: Some(tx),
            ctx: self.ctx.clone(),
            written: Vec::new(),
        })
    }

    fn fail(&self, e: Error, op: &'static str) -> Error {
        e.with_backend(self.ctx.backend()).with_operation(op)
    }
}

/// One collection of a [`Docs`] handle.
#[derive(Clone)]
pub struct Collection {
    docs: Docs,
    name: Arc<str>,
}

impl fmt::Debug for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collection")
            .field("backend", &self.docs.ctx.backend())
            .field("name", &self.name)
            .finish()
    }
}

impl Collection {
    /// The collection name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn ctx(&self) -> &Ctx {
        &self.docs.ctx
    }

    fn store(&self) -> &dyn DocStore {
        &*self.docs.store
    }

    /// Check the collection name and `checked` (the operation's other
    /// input) before the policy sees the operation.
    fn check<T>(&self, op: Op, checked: Result<T>) -> Result<T> {
        self.ctx()
            .check(op, check_collection(&self.name).and(checked))
    }

    /// Insert one document; returns its `_id` (generated if absent).
    pub async fn insert_one(&self, doc: &Value) -> Result<Value> {
        let op = Op::once("docs.insert_one");
        self.check(op, check_document(doc))?;
        let r = self
            .ctx()
            .run(op, || self.store().insert_one(&self.name, doc))
            .await;
        self.ctx().changed(Changed::Docs(&self.name), &r).await;
        r
    }

    /// Serialize `value` (which must serialize to an object) and insert it.
    pub async fn insert<T: Serialize + ?Sized>(&self, value: &T) -> Result<Value> {
        let doc = to_document(value).map_err(|e| self.docs.fail(e, "docs.insert_one"))?;
        self.insert_one(&doc).await
    }

    /// Insert documents in order; returns their `_id`s. Every document is
    /// checked before any is sent; a server-side failure (a duplicate key)
    /// stops at that document, the ones before it stay inserted (use a
    /// [transaction](Docs::begin) for all or none).
    pub async fn insert_many(&self, docs: &[Value]) -> Result<Vec<Value>> {
        let op = Op::once("docs.insert_many");
        let checked = docs.iter().enumerate().try_for_each(|(i, d)| {
            check_document(d).map_err(|e| invalid(format!("document {i}: {}", e.message())))
        });
        self.check(op, checked)?;
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        let r = self
            .ctx()
            .run(op, || self.store().insert_many(&self.name, docs))
            .await;
        self.ctx().changed(Changed::Docs(&self.name), &r).await;
        r
    }

    /// Serialize each value and [`insert_many`](Collection::insert_many).
    pub async fn insert_all<T: Serialize>(&self, values: &[T]) -> Result<Vec<Value>> {
        let docs = values
            .iter()
            .map(to_document)
            .collect::<Result<Vec<_>>>()
            .map_err(|e| self.docs.fail(e, "docs.insert_many"))?;
        self.insert_many(&docs).await
    }

    /// Stream the documents matching `filter`, fetched in batches as consumed.
    pub async fn find(&self, filter: &Value, options: FindOptions) -> Result<DocStream> {
        let op = Op::idempotent("docs.find");
        self.check(
            op,
            check_filter(filter).and_then(|()| check_find_options(&options)),
        )?;
        self.ctx()
            .run(op, || self.store().find(&self.name, filter, &options))
            .await
    }

    /// [`find`](Collection::find), decoding each document into `T`.
    pub async fn find_as<T: DeserializeOwned + Send + 'static>(
        &self,
        filter: &Value,
        options: FindOptions,
    ) -> Result<TypedDocStream<T>> {
        use futures_util::StreamExt;
        let backend = self.ctx().backend();
        let stream = self.find(filter, options).await?;
        Ok(Box::pin(stream.map(move |r| {
            r.and_then(from_document)
                .map_err(|e| e.with_backend(backend).with_operation("docs.find"))
        })))
    }

    /// Collect every matching document (mind the size of the result).
    pub async fn find_all(&self, filter: &Value, options: FindOptions) -> Result<Vec<Value>> {
        use futures_util::TryStreamExt;
        self.find(filter, options).await?.try_collect().await
    }

    /// The first document matching `filter`.
    pub async fn find_one(&self, filter: &Value) -> Result<Option<Value>> {
        self.find_one_with(filter, FindOptions::default()).await
    }

    /// The first document matching `filter`, with a projection or sort.
    pub async fn find_one_with(
        &self,
        filter: &Value,
        options: FindOptions,
    ) -> Result<Option<Value>> {
        let op = Op::idempotent("docs.find_one");
        self.check(
            op,
            check_filter(filter).and_then(|()| check_find_options(&options)),
        )?;
        self.ctx()
            .run(op, || self.store().find_one(&self.name, filter, &options))
            .await
    }

    /// [`find_one`](Collection::find_one), decoded into `T`.
    pub async fn find_one_as<T: DeserializeOwned>(&self, filter: &Value) -> Result<Option<T>> {
        match self.find_one(filter).await? {
            None => Ok(None),
            Some(v) => from_document(v)
                .map(Some)
                .map_err(|e| self.docs.fail(e, "docs.find_one")),
        }
    }

    async fn update(
        &self,
        op: &'static str,
        filter: &Value,
        update: &Value,
        many: bool,
        upsert: bool,
    ) -> Result<UpdateResult> {
        let op = if update_is_idempotent(update) {
            Op::idempotent(op)
        } else {
            Op::once(op)
        };
        self.check(op, check_filter(filter).and_then(|()| check_update(update)))?;
        let r = self
            .ctx()
            .run(op, || {
                self.store()
                    .update(&self.name, filter, update, many, upsert)
            })
            .await;
        self.ctx().changed(Changed::Docs(&self.name), &r).await;
        r
    }

    /// Apply `update` (operators such as `$set`, `$inc`, `$unset`, `$push`,
    /// or a pipeline) to the first matching document.
    pub async fn update_one(&self, filter: &Value, update: &Value) -> Result<UpdateResult> {
        self.update("docs.update_one", filter, update, false, false)
            .await
    }

    /// Apply `update` to every matching document.
    pub async fn update_many(&self, filter: &Value, update: &Value) -> Result<UpdateResult> {
        self.update("docs.update_many", filter, update, true, false)
            .await
    }

    /// Apply `update` to the first matching document, or insert one built
    /// from the filter's equalities and the update.
    pub async fn upsert_one(&self, filter: &Value, update: &Value) -> Result<UpdateResult> {
        self.update("docs.upsert_one", filter, update, false, true)
            .await
    }

    /// Replace the first matching document (keeping its `_id`); with
    /// `upsert`, insert `replacement` if none matches.
    pub async fn replace_one(
        &self,
        filter: &Value,
        replacement: &Value,
        upsert: bool,
    ) -> Result<UpdateResult> {
        let op = Op::idempotent("docs.replace_one");
        self.check(
            op,
            check_filter(filter).and_then(|()| check_document(replacement)),
        )?;
        let r = self
            .ctx()
            .run(op, || {
                self.store()
                    .replace_one(&self.name, filter, replacement, upsert)
            })
            .await;
        self.ctx().changed(Changed::Docs(&self.name), &r).await;
        r
    }

    /// Serialize `value` and [`replace_one`](Collection::replace_one).
    pub async fn replace<T: Serialize + ?Sized>(
        &self,
        filter: &Value,
        value: &T,
        upsert: bool,
    ) -> Result<UpdateResult> {
        let doc = to_document(value).map_err(|e| self.docs.fail(e, "docs.replace_one"))?;
        self.replace_one(filter, &doc, upsert).await
    }

    /// Delete the first matching document; `1` if one was deleted.
    pub async fn delete_one(&self, filter: &Value) -> Result<u64> {
        let op = Op::once("docs.delete_one");
        self.check(op, check_filter(filter))?;
        let r = self
            .ctx()
            .run(op, || self.store().delete(&self.name, filter, false))
            .await;
        self.ctx().changed(Changed::Docs(&self.name), &r).await;
        r
    }

    /// Delete every matching document; returns how many.
    pub async fn delete_many(&self, filter: &Value) -> Result<u64> {
        let op = Op::idempotent("docs.delete_many");
        self.check(op, check_filter(filter))?;
        let r = self
            .ctx()
            .run(op, || self.store().delete(&self.name, filter, true))
            .await;
        self.ctx().changed(Changed::Docs(&self.name), &r).await;
        r
    }

    /// Count the documents matching `filter` (`{}` for all).
    pub async fn count(&self, filter: &Value) -> Result<u64> {
        let op = Op::idempotent("docs.count");
        self.check(op, check_filter(filter))?;
        self.ctx()
            .run(op, || self.store().count(&self.name, filter))
            .await
    }

    /// Create an index (no-op if the same one exists); returns its name.
    pub async fn create_index(&self, index: IndexSpec) -> Result<String> {
        let op = Op::idempotent("docs.create_index");
        self.check(op, check_index(&index))?;
        self.ctx()
            .run(op, || self.store().create_index(&self.name, &index))
            .await
    }

    /// Drop an index by name ([`NotFound`](ErrorKind::NotFound) if missing).
    pub async fn drop_index(&self, name: &str) -> Result<()> {
        let op = Op::once("docs.drop_index");
        let checked = if name.is_empty() || name == "*" {
            Err(invalid(format!("index name {name:?} is not valid")))
        } else {
            Ok(())
        };
        self.check(op, checked)?;
        self.ctx()
            .run(op, || self.store().drop_index(&self.name, name))
            .await
    }

    /// Names of the collection's indexes.
    pub async fn list_indexes(&self) -> Result<Vec<String>> {
        let op = Op::idempotent("docs.list_indexes");
        self.check(op, Ok(()))?;
        self.ctx()
            .run(op, || self.store().list_indexes(&self.name))
            .await
    }

    /// Drop the collection, its documents and indexes (no error if missing).
    pub async fn drop(&self) -> Result<()> {
        let op = Op::idempotent("docs.drop");
        self.check(op, Ok(()))?;
        let r = self
            .ctx()
            .run(op, || self.store().drop_collection(&self.name))
            .await;
        self.ctx().changed(Changed::Docs(&self.name), &r).await;
        r
    }
}

/// A multi-document transaction from [`Docs::begin`]. Dropped without
/// [`commit`](DocTransaction::commit), it is aborted by the server when its
/// session ends.
pub struct DocTransaction {
    tx: Option<Box<dyn DocTx>>,
    ctx: Arc<Ctx>,
    /// Collections written, for the result cache at commit (kept only
    /// while a cache is on).
    written: Vec<String>,
}

impl fmt::Debug for DocTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocTransaction")
            .field("backend", &self.ctx.backend())
            .field("open", &self.tx.is_some())
            .finish()
    }
}

impl DocTransaction {
    fn tx(&mut self) -> Result<&mut Box<dyn DocTx>> {
        self.tx
            .as_mut()
            .ok_or_else(|| Error::new(ErrorKind::Closed, "the transaction has ended"))
    }

    /// Remember a collection written, for the cache at commit.
    fn wrote(&mut self, collection: &str) {
        if self.ctx.caching() && !self.written.iter().any(|c| c == collection) {
            self.written.push(collection.to_owned());
        }
    }

    /// Insert one document in the transaction.
    pub async fn insert_one(&mut self, collection: &str, doc: &Value) -> Result<Value> {
        self.wrote(collection);
        let ctx = self.ctx.clone();
        ctx.run_once("docs.tx.insert_one", async {
            check_collection(collection)?;
            check_document(doc)?;
            self.tx()?.insert_one(collection, doc).await
        })
        .await
    }

    /// The first matching document, as the transaction sees it.
    pub async fn find_one(&mut self, collection: &str, filter: &Value) -> Result<Option<Value>> {
        let ctx = self.ctx.clone();
        ctx.run_once("docs.tx.find_one", async {
            check_collection(collection)?;
            check_filter(filter)?;
            self.tx()?.find_one(collection, filter).await
        })
        .await
    }

    /// Apply an update to the first matching document.
    pub async fn update_one(
        &mut self,
        collection: &str,
        filter: &Value,
        update: &Value,
    ) -> Result<UpdateResult> {
        self.update(collection, filter, update, false).await
    }

    /// Apply an update to every matching document.
    pub async fn update_many(
        &mut self,
        collection: &str,
        filter: &Value,
        update: &Value,
    ) -> Result<UpdateResult> {
        self.update(collection, filter, update, true).await
    }

    async fn update(
        &mut self,
        collection: &str,
        filter: &Value,
        update: &Value,
        many: bool,
    ) -> Result<UpdateResult> {
        self.wrote(collection);
        let ctx = self.ctx.clone();
        ctx.run_once("docs.tx.update", async {
            check_collection(collection)?;
            check_filter(filter)?;
            check_update(update)?;
            self.tx()?
                .update(collection, filter, update, many, false)
                .await
        })
        .await
    }

    /// Delete every matching document.
    pub async fn delete_many(&mut self, collection: &str, filter: &Value) -> Result<u64> {
        self.wrote(collection);
        let ctx = self.ctx.clone();
        ctx.run_once("docs.tx.delete", async {
            check_collection(collection)?;
            check_filter(filter)?;
            self.tx()?.delete(collection, filter, true).await
        })
        .await
    }

    /// Count matching documents, as the transaction sees them.
    pub async fn count(&mut self, collection: &str, filter: &Value) -> Result<u64> {
        let ctx = self.ctx.clone();
        ctx.run_once("docs.tx.count", async {
            check_collection(collection)?;
            check_filter(filter)?;
            self.tx()?.count(collection, filter).await
        })
        .await
    }

    /// Commit the transaction; the collections it wrote are dropped from
    /// the result cache once the commit is through.
    pub async fn commit(mut self) -> Result<()> {
        let tx = self.tx.take();
        let r = self
            .ctx
            .run_once("docs.tx.commit", async move {
                match tx {
                    Some(tx) => tx.commit().await,
                    None => Err(Error::new(ErrorKind::Closed, "the transaction has ended")),
                }
            })
            .await;
        for c in std::mem::take(&mut self.written) {
            self.ctx.changed(Changed::Docs(&c), &r).await;
        }
        r
    }

    /// Abort the transaction.
    pub async fn rollback(mut self) -> Result<()> {
        let tx = self.tx.take();
        self.ctx
            .run_once("docs.tx.rollback", async move {
                match tx {
                    Some(tx) => tx.rollback().await,
                    None => Ok(()),
                }
            })
            .await
    }
}
