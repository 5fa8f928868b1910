//! The vector capability on Qdrant collections.

use crate::Shared;
use crate::convert::{
    filter_to_grpc, id_from_grpc, id_to_grpc, payload_from_grpc, payload_to_grpc,
};
use crate::error::{BACKEND, map_err};
use async_trait::async_trait;
use dbx_core::serde_json::{Map, Value};
use dbx_core::vector::{
    CollectionInfo, Distance, Filter, Include, Point, PointId, Record, ScoredPoint, Search,
    VectorStore,
};
use dbx_core::{Error, ErrorKind, Result};
use qdrant_client::qdrant::{
    self as q, points_selector::PointsSelectorOneOf, vector_output, vectors_config, vectors_output,
    with_payload_selector, with_vectors_selector,
};
use std::collections::HashMap;
use std::sync::Arc;

/// Qdrant collections as dbx vector collections: one unnamed dense vector
/// per point.
#[derive(Debug)]
pub(crate) struct QdrantVectors {
    pub(crate) shared: Arc<Shared>,
}

fn distance_to_grpc(d: Distance) -> Result<q::Distance> {
    match d {
        Distance::Cosine => Ok(q::Distance::Cosine),
        Distance::Dot => Ok(q::Distance::Dot),
        Distance::Euclid => Ok(q::Distance::Euclid),
        Distance::Manhattan => Ok(q::Distance::Manhattan),
        other => Err(Error::unsupported(format!(
            "the {other} distance is not supported by the {BACKEND} driver"
        ))),
    }
}

fn distance_from_grpc(collection: &str, d: i32) -> Result<Distance> {
    match q::Distance::try_from(d) {
        Ok(q::Distance::Cosine) => Ok(Distance::Cosine),
        Ok(q::Distance::Dot) => Ok(Distance::Dot),
        Ok(q::Distance::Euclid) => Ok(Distance::Euclid),
        Ok(q::Distance::Manhattan) => Ok(Distance::Manhattan),
        _ => Err(Error::decode(format!(
            "collection `{collection}` has a distance this driver does not know (code {d})"
        ))),
    }
}

fn named_vectors(collection: &str) -> Error {
    Error::unsupported(format!(
        "collection `{collection}` has named vectors; dbx uses only the unnamed default vector (reach named vectors through db.qdrant()?.client())"
    ))
}

fn include_payload(on: bool) -> Option<q::WithPayloadSelector> {
    Some(q::WithPayloadSelector {
        selector_options: Some(with_payload_selector::SelectorOptions::Enable(on)),
    })
}

fn include_vectors(on: bool) -> Option<q::WithVectorsSelector> {
    Some(q::WithVectorsSelector {
        selector_options: Some(with_vectors_selector::SelectorOptions::Enable(on)),
    })
}

/// The search's `exact` and `hnsw_ef`, when it sets either.
fn search_params(search: &Search) -> Option<q::SearchParams> {
    (search.is_exact() || search.ef().is_some()).then(|| q::SearchParams {
        hnsw_ef: search.ef().map(|ef| ef as u64),
        exact: search.is_exact().then_some(true),
        ..Default::default()
    })
}

fn dense(data: Vec<f32>) -> q::Vector {
    q::Vector {
        vector: Some(q::vector::Vector::Dense(q::DenseVector { data })),
        ..Default::default()
    }
}

/// The unnamed dense vector of a point the server returned.
/// Id, payload and vector of a point read back, as `include` asks.
type PointParts = (PointId, Option<Map<String, Value>>, Option<Vec<f32>>);

fn point_parts(
    collection: &str,
    include: Include,
    id: Option<q::PointId>,
    payload: HashMap<String, q::Value>,
    vectors: Option<q::VectorsOutput>,
) -> Result<PointParts> {
    let id = id_from_grpc(id)?;
    let payload = include.payload.then(|| payload_from_grpc(payload));
    let vector = if include.vectors {
        Some(vector_from_grpc(collection, vectors)?)
    } else {
        None
    };
    Ok((id, payload, vector))
}

fn vector_from_grpc(collection: &str, v: Option<q::VectorsOutput>) -> Result<Vec<f32>> {
    match v.and_then(|v| v.vectors_options) {
        Some(vectors_output::VectorsOptions::Vector(v)) => match v.into_vector() {
            vector_output::Vector::Dense(d) => Ok(d.data),
            _ => Err(Error::unsupported(format!(
                "collection `{collection}` holds sparse or multi-vectors, which dbx does not read"
            ))),
        },
        Some(vectors_output::VectorsOptions::Vectors(_)) => Err(named_vectors(collection)),
        None => Err(Error::decode(format!(
            "the server returned a point of `{collection}` without the vector that was asked for"
        ))),
    }
}

/// Fail with a transient timeout if the server gave up waiting for a write.
fn check_update(collection: &str, r: q::PointsOperationResponse) -> Result<()> {
    match r.result.map(|r| r.status) {
        Some(s) if s == q::UpdateStatus::WaitTimeout as i32 => Err(Error::new(
            ErrorKind::Timeout,
            format!("the write to `{collection}` was accepted but not applied in time"),
        )),
        Some(s) if s == q::UpdateStatus::ClockRejected as i32 => Err(Error::new(
            ErrorKind::Conflict,
            format!("the write to `{collection}` was rejected as outdated"),
        )
        .set_transient(true)),
        _ => Ok(()),
    }
}

impl QdrantVectors {
    /// One call on the server calls go to now; its error mapped (naming
    /// `collection` where one is missing) and, with several servers, the
    /// server avoided if it could not be reached.
    async fn call<'a, T, Fut>(
        &'a self,
        collection: Option<&str>,
        f: impl FnOnce(&'a qdrant_client::Qdrant) -> Fut,
    ) -> Result<T>
    where
        Fut: std::future::Future<Output = std::result::Result<T, qdrant_client::QdrantError>>,
    {
        let node = self.shared.pick()?;
        f(&node.client)
            .await
            .map_err(|e| self.shared.failed(node, map_err(e, collection)))
    }

    async fn delete(&self, collection: &str, selector: PointsSelectorOneOf) -> Result<()> {
        let request = q::DeletePoints {
            collection_name: collection.to_owned(),
            wait: Some(true),
            points: Some(q::PointsSelector {
                points_selector_one_of: Some(selector),
            }),
            ordering: self.shared.write_ordering,
            shard_key_selector: self.shared.shard_key.clone(),
            ..Default::default()
        };
        let r = self
            .call(Some(collection), |c| c.delete_points(request))
            .await?;
        check_update(collection, r).map_err(|e| e.with_backend(BACKEND))
    }
}

#[async_trait]
impl VectorStore for QdrantVectors {
    async fn create_collection(
        &self,
        name: &str,
        dimension: usize,
        distance: Distance,
    ) -> Result<()> {
        let params = q::VectorParams {
            size: dimension as u64,
            distance: distance_to_grpc(distance)? as i32,
            ..Default::default()
        };
        let request = q::CreateCollection {
            collection_name: name.to_owned(),
            vectors_config: Some(q::VectorsConfig {
                config: Some(vectors_config::Config::Params(params)),
            }),
            ..Default::default()
        };
        self.call(None, |c| c.create_collection(request)).await?;
        Ok(())
    }

    async fn drop_collection(&self, name: &str) -> Result<bool> {
        let request = q::DeleteCollection {
            collection_name: name.to_owned(),
            timeout: None,
        };
        let r = self.call(None, |c| c.delete_collection(request)).await?;
        Ok(r.result)
    }

    async fn list_collections(&self) -> Result<Vec<String>> {
        let r = self.call(None, |c| c.list_collections()).await?;
        let mut names: Vec<String> = r.collections.into_iter().map(|c| c.name).collect();
        names.sort();
        Ok(names)
    }

    async fn collection_info(&self, name: &str) -> Result<Option<CollectionInfo>> {
        let request = q::GetCollectionInfoRequest {
            collection_name: name.to_owned(),
        };
        let r = match self.call(Some(name), |c| c.collection_info(request)).await {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let config = r
            .result
            .and_then(|i| i.config)
            .and_then(|c| c.params)
            .and_then(|p| p.vectors_config)
            .and_then(|v| v.config);
        let params = match config {
            Some(vectors_config::Config::Params(p)) => p,
            Some(vectors_config::Config::ParamsMap(_)) => return Err(named_vectors(name)),
            None => {
                return Err(Error::decode(format!(
                    "the server described collection `{name}` without its vector settings"
                )));
            }
        };
        let dimension = usize::try_from(params.size).map_err(|_| {
            Error::decode(format!(
                "collection `{name}` has a dimension this platform cannot hold"
            ))
        })?;
        let distance = distance_from_grpc(name, params.distance)?;
        // The info's points_count is approximate; count exactly, as the
        // contract's other backends do.
        let points = match self.count(name, None).await {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(CollectionInfo::new(dimension, distance, points)))
    }

    async fn upsert(&self, collection: &str, points: &[Point]) -> Result<()> {
        let points = points
            .iter()
            .map(|p| {
                Ok(q::PointStruct {
                    id: Some(id_to_grpc(&p.id)),
                    payload: payload_to_grpc(&p.payload)?,
                    vectors: Some(q::Vectors {
                        vectors_options: Some(q::vectors::VectorsOptions::Vector(dense(
                            p.vector.clone(),
                        ))),
                    }),
                })
            })
            .collect::<Result<Vec<_>>>()
            .map_err(|e| e.with_backend(BACKEND))?;
        let request = q::UpsertPoints {
            collection_name: collection.to_owned(),
            wait: Some(true),
            points,
            ordering: self.shared.write_ordering,
            shard_key_selector: self.shared.shard_key.clone(),
            ..Default::default()
        };
        let r = self
            .call(Some(collection), |c| c.upsert_points(request))
            .await?;
        check_update(collection, r).map_err(|e| e.with_backend(BACKEND))
    }

    async fn get(
        &self,
        collection: &str,
        ids: &[PointId],
        include: Include,
    ) -> Result<Vec<Record>> {
        let request = q::GetPoints {
            collection_name: collection.to_owned(),
            ids: ids.iter().map(id_to_grpc).collect(),
            with_payload: include_payload(include.payload),
            with_vectors: include_vectors(include.vectors),
            read_consistency: self.shared.read_consistency,
            shard_key_selector: self.shared.shard_key.clone(),
            ..Default::default()
        };
        let r = self
            .call(Some(collection), |c| c.get_points(request))
            .await?;
        r.result
            .into_iter()
            .map(|p| {
                let (id, payload, vector) =
                    point_parts(collection, include, p.id, p.payload, p.vectors)?;
                Ok(Record::new(id, payload, vector))
            })
            .collect::<Result<_>>()
            .map_err(|e: Error| e.with_backend(BACKEND))
    }

    async fn delete_ids(&self, collection: &str, ids: &[PointId]) -> Result<()> {
        let selector = PointsSelectorOneOf::Points(q::PointsIdsList {
            ids: ids.iter().map(id_to_grpc).collect(),
        });
        self.delete(collection, selector).await
    }

    async fn delete_where(&self, collection: &str, filter: &Filter) -> Result<()> {
        self.delete(
            collection,
            PointsSelectorOneOf::Filter(filter_to_grpc(filter)),
        )
        .await
    }

    async fn count(&self, collection: &str, filter: Option<&Filter>) -> Result<u64> {
        let request = q::CountPoints {
            collection_name: collection.to_owned(),
            filter: filter.map(filter_to_grpc),
            exact: Some(true),
            read_consistency: self.shared.read_consistency,
            shard_key_selector: self.shared.shard_key.clone(),
            ..Default::default()
        };
        let r = self.call(Some(collection), |c| c.count(request)).await?;
        Ok(r.result.map_or(0, |c| c.count))
    }

    async fn search(&self, collection: &str, search: &Search) -> Result<Vec<ScoredPoint>> {
        let include = search.include();
        let query = q::Query {
            variant: Some(q::query::Variant::Nearest(q::VectorInput {
                variant: Some(q::vector_input::Variant::Dense(q::DenseVector {
                    data: search.vector().to_vec(),
                })),
            })),
        };
        let request = q::QueryPoints {
            collection_name: collection.to_owned(),
            query: Some(query),
            filter: search.filter_ref().map(filter_to_grpc),
            score_threshold: search.threshold(),
            params: search_params(search),
            limit: Some(search.limit() as u64),
            with_payload: include_payload(include.payload),
            with_vectors: include_vectors(include.vectors),
            read_consistency: self.shared.read_consistency,
            shard_key_selector: self.shared.shard_key.clone(),
            ..Default::default()
        };
        let r = self.call(Some(collection), |c| c.query(request)).await?;
        r.result
            .into_iter()
            .map(|p| {
                let (id, payload, vector) =
                    point_parts(collection, include, p.id, p.payload, p.vectors)?;
                Ok(ScoredPoint::new(id, p.score, payload, vector))
            })
            .collect::<Result<_>>()
            .map_err(|e: Error| e.with_backend(BACKEND))
    }
}
