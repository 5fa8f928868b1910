//! Semantic-ish search with the vector capability, on SQLite or Qdrant.
//!
//! ```text
//! cargo run -p examples --example vectors                                   # SQLite in memory
//! cargo run -p examples --example vectors -- sqlite:vectors.db              # a file
//! cargo run -p examples --features qdrant --example vectors -- qdrant://127.0.0.1:6334
//! ```
//!
//! The texts are embedded with a deterministic toy embedding (hashed
//! character trigrams, no model to download), so the same program gives the
//! same ranking on every backend: SQLite on a small board without a server,
//! Qdrant in the cloud.

use dbx::Dbx;
use dbx::vector::{Condition, Distance, Filter, Point, Search};

const DIM: usize = 256;

/// A toy embedding: counts of hashed character trigrams, so texts sharing
/// fragments of words end up close under cosine similarity.
fn embed(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; DIM];
    let chars: Vec<char> = format!("  {} ", text.to_lowercase()).chars().collect();
    for w in chars.windows(3) {
        // FNV-1a over the trigram.
        let mut h: u32 = 0x811c_9dc5;
        for c in w {
            h ^= *c as u32;
            h = h.wrapping_mul(0x0100_0193);
        }
        v[h as usize % DIM] += 1.0;
    }
    v
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Doc {
    text: String,
    topic: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DBX_URL").ok())
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "sqlite::memory:".to_owned());
    let db = Dbx::connect(&url).await?;
    println!("connected to {} ({})", db.options(), db.backend_name());

    let docs = db.vectors()?.collection("example_docs");
    docs.drop().await?;
    docs.create(DIM, Distance::Cosine).await?;

    let texts = [
        ("The cat sleeps on the warm windowsill", "pets"),
        ("Dogs love long walks in the park", "pets"),
        ("A kitten chases a ball of yarn", "pets"),
        ("The new electric car charges in twenty minutes", "cars"),
        ("Changing the oil of a diesel engine", "cars"),
        ("Sourdough bread needs a lively starter", "food"),
        ("Fresh pasta with tomato and basil", "food"),
    ];
    let points = texts
        .iter()
        .enumerate()
        .map(|(i, (text, topic))| {
            Point::new(i as u64, embed(text)).with_data(&Doc {
                text: text.to_string(),
                topic: topic.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    docs.upsert(&points).await?;
    println!("stored {} texts", docs.count().await?);

    for query in ["sleepy cats", "charging an electric car", "bread starter"] {
        println!("\nnearest to {query:?}:");
        for hit in docs.search(&Search::new(embed(query), 3)).await? {
            let doc: Doc = hit.payload_as()?;
            println!("  {:.3}  [{}] {}", hit.score, doc.topic, doc.text);
        }
    }

    // The same search restricted by payload.
    let only_food = Filter::new().must(Condition::eq("topic", "food"));
    let hits = docs
        .search(&Search::new(embed("sleepy cats"), 2).filter(only_food))
        .await?;
    println!("\nnearest food to \"sleepy cats\":");
    for hit in &hits {
        println!("  {:.3}  {}", hit.score, hit.payload_as::<Doc>()?.text);
    }

    // Bad input is a typed error, not a panic.
    let err = docs
        .search(&Search::new(vec![f32::NAN; DIM], 1))
        .await
        .unwrap_err();
    println!("\na NaN query: {err}");
    let err = docs
        .upsert_one(Point::new(99u64, vec![1.0; 3]))
        .await
        .unwrap_err();
    println!("a 3-dimensional vector: {err}");

    docs.drop().await?;
    db.close().await;
    println!("done");
    Ok(())
}
