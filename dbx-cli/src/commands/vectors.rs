//! `dbx vectors TARGET search|list|info`.

use super::{App, close};
use crate::cli::{VectorSearchArgs, VectorsArgs, VectorsCommand};
use crate::error::{CliError, CliResult};
use crate::output::{Cell, Table, escape_control};
use dbx::{Filter, ScoredPoint, Search, Vectors};
use serde_json::{Value as J, json};

/// Run a vector subcommand.
pub(crate) async fn run(app: &App, args: VectorsArgs) -> CliResult {
    // A malformed filter is refused before connecting.
    let filter = match &args.command {
        VectorsCommand::Search(s) => s
            .filter
            .as_ref()
            .map(Filter::from_json)
            .transpose()
            .map_err(|e| CliError::Usage(format!("--filter: {}", e.message())))?,
        _ => None,
    };
    let (_, db) = app.connect(&args.target).await?;
    let result = match db.vectors() {
        Ok(vectors) => match args.command {
            VectorsCommand::Search(a) => search(app, vectors, a, filter).await,
            VectorsCommand::List => list(app, vectors).await,
            VectorsCommand::Info(a) => info(app, vectors, &a.collection).await,
        },
        Err(e) => Err(e.into()),
    };
    close(&db).await;
    result
}

async fn search(
    app: &App,
    vectors: &Vectors,
    args: VectorSearchArgs,
    filter: Option<Filter>,
) -> CliResult {
    let mut search = Search::new(args.vector.0, args.limit)
        .with_vectors(args.with_vectors)
        .exact(args.exact);
    if let Some(ef) = args.hnsw_ef {
        search = search.hnsw_ef(ef);
    }
    if let Some(f) = filter {
        search = search.filter(f);
    }
    if let Some(t) = args.score_threshold {
        search = search.score_threshold(t);
    }
    let points = vectors.collection(&args.collection).search(&search).await?;
    if app.out.json {
        let items: Vec<J> = points.iter().map(point_json).collect();
        app.out.json_value(&J::Array(items))?;
        return Ok(());
    }
    let mut headers = vec!["ID", "SCORE", "PAYLOAD"];
    if args.with_vectors {
        headers.push("VECTOR");
    }
    let mut table = Table::new(headers);
    for p in &points {
        let payload = p
            .payload
            .as_ref()
            .map_or_else(String::new, |m| J::Object(m.clone()).to_string());
        let mut row = vec![
            Cell::number(p.id.to_string()),
            Cell::number(format!("{:.4}", p.score)),
            Cell::text(escape_control(&payload)),
        ];
        if args.with_vectors {
            row.push(Cell::text(
                p.vector
                    .as_ref()
                    .map_or_else(String::new, |v| vector_json(v).to_string()),
            ));
        }
        table.push(row);
    }
    let mut text = if points.is_empty() {
        String::new()
    } else {
        table.render(&app.out)
    };
    text.push_str(&format!(
        "({} point{})\n",
        points.len(),
        if points.len() == 1 { "" } else { "s" }
    ));
    app.out.write(&text)?;
    Ok(())
}

fn point_json(p: &ScoredPoint) -> J {
    let mut o = json!({
        "id": p.id,
        "score": f32_json(p.score),
        "payload": p.payload,
    });
    if let (Some(v), Some(map)) = (&p.vector, o.as_object_mut()) {
        map.insert("vector".into(), vector_json(v));
    }
    o
}

/// An `f32` as JSON in its shortest form (`0.99624`, not the widened
/// `0.9962406158447266`).
fn f32_json(f: f32) -> J {
    f.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(J::Null, J::Number)
}

fn vector_json(v: &[f32]) -> J {
    J::Array(v.iter().map(|f| f32_json(*f)).collect())
}

async fn list(app: &App, vectors: &Vectors) -> CliResult {
    let mut names = vectors.list().await?;
    names.sort();
    if app.out.json {
        app.out.json_value(&json!(names))?;
    } else {
        let mut text = String::new();
        for n in &names {
            text.push_str(n);
            text.push('\n');
        }
        app.out.write(&text)?;
    }
    Ok(())
}

async fn info(app: &App, vectors: &Vectors, collection: &str) -> CliResult {
    let Some(info) = vectors.collection(collection).info().await? else {
        return Err(CliError::Failed(format!(
            "collection `{collection}` not found"
        )));
    };
    if app.out.json {
        app.out.json_value(&json!({
            "collection": collection,
            "dimension": info.dimension,
            "distance": info.distance.as_str(),
            "points": info.points,
        }))?;
    } else {
        app.out.write(&format!(
            "collection  {collection}\ndimension   {}\ndistance    {}\npoints      {}\n",
            info.dimension,
            info.distance.as_str(),
            info.points
        ))?;
    }
    Ok(())
}
