//! The document capability on MongoDB collections.

use crate::Shared;
use crate::error::{BACKEND, map_err};
use async_trait::async_trait;
use dbx_core::document::{
    DocStore, DocStream, DocTx, FindOptions, IndexSpec, MAX_DOCUMENT_LEN, UpdateResult,
};
use dbx_core::{Error, ErrorKind, Result};
use futures_util::StreamExt;
use mongodb::action::Action;
use mongodb::bson::{Bson, Document, RawDocumentBuf};
use mongodb::options::{IndexOptions, UpdateModifications};
use mongodb::{ClientSession, Collection, IndexModel};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// JSON (with Extended JSON v2) to a BSON document; malformed Extended JSON
/// is invalid input.
pub(crate) fn to_doc(v: &Value, what: &str) -> Result<Document> {
    let Value::Object(map) = v else {
        return Err(Error::invalid_input(format!(
            "{what} must be a JSON object"
        )));
    };
    Document::try_from(map.clone()).map_err(|e| {
        Error::invalid_input(format!("{what} has malformed Extended JSON: {e}"))
            .with_source(e)
            .with_backend(BACKEND)
    })
}

/// A document to store, encoded and checked against the 16 MiB limit.
pub(crate) fn to_stored(v: &Value) -> Result<RawDocumentBuf> {
    let doc = to_doc(v, "the document")?;
    let raw = RawDocumentBuf::from_document(&doc).map_err(|e| {
        Error::invalid_input(format!("the document cannot be encoded as BSON: {e}"))
            .with_source(e)
            .with_backend(BACKEND)
    })?;
    let len = raw.as_bytes().len();
    if len > MAX_DOCUMENT_LEN {
        return Err(Error::invalid_input(format!(
            "the document is {len} bytes as BSON; MongoDB's limit is {MAX_DOCUMENT_LEN}"
        ))
        .with_backend(BACKEND));
    }
    Ok(raw)
}

fn to_update(v: &Value) -> Result<UpdateModifications> {
    match v {
        Value::Array(stages) => Ok(UpdateModifications::Pipeline(
            stages
                .iter()
                .map(|s| to_doc(s, "an update pipeline stage"))
                .collect::<Result<_>>()?,
        )),
        other => Ok(UpdateModifications::Document(to_doc(other, "the update")?)),
    }
}

/// BSON to relaxed Extended JSON.
pub(crate) fn to_json(doc: Document) -> Value {
    Bson::Document(doc).into_relaxed_extjson()
}

fn id_json(b: Bson) -> Value {
    b.into_relaxed_extjson()
}

fn opt_doc(v: &Option<Value>, what: &str) -> Result<Option<Document>> {
    v.as_ref().map(|v| to_doc(v, what)).transpose()
}

fn limit_i64(n: Option<u64>) -> Option<i64> {
    n.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// The document capability of one MongoDB database.
#[derive(Debug)]
pub(crate) struct MongoDocs {
    pub(crate) shared: Arc<Shared>,
}

impl MongoDocs {
    fn coll(&self, name: &str) -> Result<Collection<Document>> {
        self.shared.check_open()?;
        Ok(self.shared.db.collection(name))
    }
}

/// A cursor as a stream, each batch bounded by the operation timeout.
fn cursor_stream(cursor: mongodb::Cursor<Document>, timeout: Duration) -> DocStream {
    Box::pin(futures_util::stream::unfold(
        Some(cursor),
        move |cursor| async move {
            let mut cursor = cursor?;
            match tokio::time::timeout(timeout, cursor.next()).await {
                Ok(Some(Ok(doc))) => Some((Ok(to_json(doc)), Some(cursor))),
                Ok(Some(Err(e))) => Some((Err(map_err(e).with_operation("docs.find")), None)),
                Ok(None) => None,
                Err(_) => Some((
                    Err(Error::new(
                        ErrorKind::Timeout,
                        format!("the next batch did not arrive within {timeout:?}"),
                    )
                    .with_backend(BACKEND)
                    .with_operation("docs.find")),
                    None,
                )),
            }
        },
    ))
}

fn index_model(index: &IndexSpec) -> Result<IndexModel> {
    let keys = to_doc(&index.keys, "the index keys")?;
    let options = IndexOptions::builder()
        .name(index.name.clone())
        .unique(index.unique.then_some(true))
        .expire_after(index.expire_after)
        .build();
    Ok(IndexModel::builder().keys(keys).options(options).build())
}

fn update_result(r: mongodb::results::UpdateResult) -> UpdateResult {
    UpdateResult::new(
        r.matched_count,
        r.modified_count,
        r.upserted_id.map(id_json),
    )
}

#[async_trait]
impl DocStore for MongoDocs {
    async fn insert_one(&self, collection: &str, doc: &Value) -> Result<Value> {
        let raw = to_stored(doc)?;
        let coll = self.coll(collection)?.clone_with_type::<RawDocumentBuf>();
        let r = coll.insert_one(raw).await.map_err(map_err)?;
        Ok(id_json(r.inserted_id))
    }

    async fn insert_many(&self, collection: &str, docs: &[Value]) -> Result<Vec<Value>> {
        let raws = docs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                to_stored(d).map_err(|e| {
                    Error::invalid_input(format!("document {i}: {}", e.message()))
                        .with_backend(BACKEND)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let coll = self.coll(collection)?.clone_with_type::<RawDocumentBuf>();
        let r = coll.insert_many(raws).await.map_err(map_err)?;
        let mut ids: Vec<(usize, Bson)> = r.inserted_ids.into_iter().collect();
        ids.sort_by_key(|(i, _)| *i);
        Ok(ids.into_iter().map(|(_, id)| id_json(id)).collect())
    }

    async fn find(
        &self,
        collection: &str,
        filter: &Value,
        options: &FindOptions,
    ) -> Result<DocStream> {
        let filter = to_doc(filter, "the filter")?;
        let coll = self.coll(collection)?;
        let cursor = coll
            .find(filter)
            .optional(opt_doc(&options.projection, "the projection")?, |a, p| {
                a.projection(p)
            })
            .optional(opt_doc(&options.sort, "the sort")?, |a, s| a.sort(s))
            .optional(limit_i64(options.limit), |a, l| a.limit(l))
            .optional(options.skip, |a, s| a.skip(s))
            .optional(options.batch_size, |a, b| a.batch_size(b))
            .await
            .map_err(map_err)?;
        Ok(cursor_stream(cursor, self.shared.timeout))
    }

    async fn find_one(
        &self,
        collection: &str,
        filter: &Value,
        options: &FindOptions,
    ) -> Result<Option<Value>> {
        let filter = to_doc(filter, "the filter")?;
        let coll = self.coll(collection)?;
        let doc = coll
            .find_one(filter)
            .optional(opt_doc(&options.projection, "the projection")?, |a, p| {
                a.projection(p)
            })
            .optional(opt_doc(&options.sort, "the sort")?, |a, s| a.sort(s))
            .optional(options.skip, |a, s| a.skip(s))
            // The server stops working on it when the caller stops waiting.
            .max_time(self.shared.timeout)
            .await
            .map_err(map_err)?;
        Ok(doc.map(to_json))
    }

    async fn update(
        &self,
        collection: &str,
        filter: &Value,
        update: &Value,
        many: bool,
        upsert: bool,
    ) -> Result<UpdateResult> {
        let filter = to_doc(filter, "the filter")?;
        let update = to_update(update)?;
        let coll = self.coll(collection)?;
        let r = if many {
            coll.update_many(filter, update).upsert(upsert).await
        } else {
            coll.update_one(filter, update).upsert(upsert).await
        };
        Ok(update_result(r.map_err(map_err)?))
    }

    async fn replace_one(
        &self,
        collection: &str,
        filter: &Value,
        replacement: &Value,
        upsert: bool,
    ) -> Result<UpdateResult> {
        let filter = to_doc(filter, "the filter")?;
        let raw = to_stored(replacement)?;
        let coll = self.coll(collection)?.clone_with_type::<RawDocumentBuf>();
        let r = coll
            .replace_one(filter, raw)
            .upsert(upsert)
            .await
            .map_err(map_err)?;
        Ok(update_result(r))
    }

    async fn delete(&self, collection: &str, filter: &Value, many: bool) -> Result<u64> {
        let filter = to_doc(filter, "the filter")?;
        let coll = self.coll(collection)?;
        let r = if many {
            coll.delete_many(filter).await
        } else {
            coll.delete_one(filter).await
        };
        Ok(r.map_err(map_err)?.deleted_count)
    }

    async fn count(&self, collection: &str, filter: &Value) -> Result<u64> {
        let filter = to_doc(filter, "the filter")?;
        self.coll(collection)?
            .count_documents(filter)
            .max_time(self.shared.timeout)
            .await
            .map_err(map_err)
    }

    async fn create_index(&self, collection: &str, index: &IndexSpec) -> Result<String> {
        let model = index_model(index)?;
        let r = self
            .coll(collection)?
            .create_index(model)
            .await
            .map_err(map_err)?;
        Ok(r.index_name)
    }

    async fn drop_index(&self, collection: &str, name: &str) -> Result<()> {
        self.coll(collection)?
            .drop_index(name)
            .await
            .map_err(map_err)
    }

    async fn list_indexes(&self, collection: &str) -> Result<Vec<String>> {
        match self.coll(collection)?.list_index_names().await {
            Ok(names) => Ok(names),
            // A collection that does not exist has no indexes.
            Err(e) if matches!(e.kind.as_ref(), mongodb::error::ErrorKind::Command(c) if c.code == 26) => {
                Ok(Vec::new())
            }
            Err(e) => Err(map_err(e)),
        }
    }

    async fn drop_collection(&self, collection: &str) -> Result<()> {
        match self.coll(collection)?.drop().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.kind.as_ref(), mongodb::error::ErrorKind::Command(c) if c.code == 26) => {
                Ok(())
            }
            Err(e) => Err(map_err(e)),
        }
    }

    async fn begin(&self) -> Result<Box<dyn DocTx>> {
        let session = self.shared.start_transaction().await?;
        Ok(Box::new(MongoTransaction {
            session,
            shared: self.shared.clone(),
        }))
    }
}

/// A transaction on one client session. Dropped open, the driver aborts it.
#[derive(Debug)]
pub(crate) struct MongoTransaction {
    session: ClientSession,
    shared: Arc<Shared>,
}

impl MongoTransaction {
    fn coll(&self, name: &str) -> Result<Collection<Document>> {
        self.shared.check_open()?;
        Ok(self.shared.db.collection(name))
    }
}

#[async_trait]
impl DocTx for MongoTransaction {
    async fn insert_one(&mut self, collection: &str, doc: &Value) -> Result<Value> {
        let raw = to_stored(doc)?;
        let coll = self.coll(collection)?.clone_with_type::<RawDocumentBuf>();
        let r = coll
            .insert_one(raw)
            .session(&mut self.session)
            .await
            .map_err(map_err)?;
        Ok(id_json(r.inserted_id))
    }

    async fn find_one(&mut self, collection: &str, filter: &Value) -> Result<Option<Value>> {
        let filter = to_doc(filter, "the filter")?;
        let doc = self
            .coll(collection)?
            .find_one(filter)
            .session(&mut self.session)
            .await
            .map_err(map_err)?;
        Ok(doc.map(to_json))
    }

    async fn update(
        &mut self,
        collection: &str,
        filter: &Value,
        update: &Value,
        many: bool,
        upsert: bool,
    ) -> Result<UpdateResult> {
        let filter = to_doc(filter, "the filter")?;
        let update = to_update(update)?;
        let coll = self.coll(collection)?;
        let r = if many {
            coll.update_many(filter, update)
                .upsert(upsert)
                .session(&mut self.session)
                .await
        } else {
            coll.update_one(filter, update)
                .upsert(upsert)
                .session(&mut self.session)
                .await
        };
        Ok(update_result(r.map_err(map_err)?))
    }

    async fn delete(&mut self, collection: &str, filter: &Value, many: bool) -> Result<u64> {
        let filter = to_doc(filter, "the filter")?;
        let coll = self.coll(collection)?;
        let r = if many {
            coll.delete_many(filter).session(&mut self.session).await
        } else {
            coll.delete_one(filter).session(&mut self.session).await
        };
        Ok(r.map_err(map_err)?.deleted_count)
    }

    async fn count(&mut self, collection: &str, filter: &Value) -> Result<u64> {
        let filter = to_doc(filter, "the filter")?;
        self.coll(collection)?
            .count_documents(filter)
            .session(&mut self.session)
            .await
            .map_err(map_err)
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        self.session.commit_transaction().await.map_err(map_err)
    }

    async fn rollback(mut self: Box<Self>) -> Result<()> {
        self.session.abort_transaction().await.map_err(map_err)
    }
}
