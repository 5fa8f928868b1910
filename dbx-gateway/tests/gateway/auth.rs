//! The auth matrix: no token, bad signature, expired, not yet valid,
//! wrong issuer or audience, alg none, key confusion → 401; wrong role →
//! 403; right role → 200. HS256, RS256 and ES256 (keys from PEM files and
//! a JWKS file).

use crate::common::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::{Algorithm, EncodingKey};
use reqwest::{Method, StatusCode};
use serde_json::json;

const DB: &str = "[databases.main]\nurl = \"sqlite::memory:\"\n";

#[tokio::test]
async fn auth_matrix_hs256() {
    let gw = Gateway::start(DB).await;
    let path = "/v1/db/main/kv/k";
    let body = json!({"value": "v"});
    let put = |t: Option<String>| {
        let gw = &gw;
        let body = body.clone();
        async move { gw.send(Method::PUT, path, t.as_deref(), Some(&body)).await }
    };

    let (s, v) = put(None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["kind"], "unauthorized");

    let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let claims = |extra: serde_json::Value| {
        let mut c = json!({"sub": "ada", "roles": ["admin"], "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let other = EncodingKey::from_secret(b"another-secret-that-is-long-enough-too!!").unwrap();
    let cases = [
        (
            "bad signature",
            sign(&claims(json!({})), Algorithm::HS256, &other),
        ),
        (
            "expired",
            sign(&claims(json!({"exp": now() - 120})), Algorithm::HS256, &key),
        ),
        (
            "not yet valid",
            sign(
                &claims(json!({"nbf": now() + 3600})),
                Algorithm::HS256,
                &key,
            ),
        ),
        (
            "wrong issuer",
            sign(&claims(json!({"iss": "evil"})), Algorithm::HS256, &key),
        ),
        (
            "wrong audience",
            sign(&claims(json!({"aud": "other"})), Algorithm::HS256, &key),
        ),
        ("no exp", {
            let mut c = claims(json!({}));
            c.as_object_mut().unwrap().remove("exp");
            sign(&c, Algorithm::HS256, &key)
        }),
        (
            "HS512 where only HS256 is configured",
            sign(
                &claims(json!({})),
                Algorithm::HS512,
                &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
            ),
        ),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, t) in cases {
        let (s, v) = put(Some(t)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}: {v}");
    }
    // alg none: an unsigned token.
    let header = B64URL.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = B64URL.encode(claims(json!({})).to_string());
    let (s, v) = put(Some(format!("{header}.{payload}."))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "alg none: {v}");

    // Wrong role: the reader may not write.
    let (s, v) = put(Some(token("rita", &["reader"]))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["kind"], "forbidden");
    let (s, _) = put(Some(token("nobody", &[]))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Right role.
    let (s, v) = put(Some(token("ada", &["admin"]))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // And the reader may read.
    let (s, v) = gw.get(path, &token("rita", &["reader"])).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["value"], "v");
}

#[tokio::test]
async fn rs256_es256_and_jwks_and_key_confusion() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.pem",
        ],
    );
    openssl(
        d,
        &["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub.pem"],
    );
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.pem",
        ],
    );
    openssl(
        d,
        &[
            "pkcs8", "-topk8", "-nocrypt", "-in", "ec.pem", "-out", "ec8.pem",
        ],
    );
    openssl(
        d,
        &["pkey", "-in", "ec.pem", "-pubout", "-out", "ec.pub.pem"],
    );
    // A second RSA key, published only through the JWKS file.
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa2.pem",
        ],
    );
    let modulus = std::process::Command::new("openssl")
        .args(["rsa", "-in", "rsa2.pem", "-noout", "-modulus"])
        .current_dir(d)
        .output()
        .unwrap();
    let hex = String::from_utf8(modulus.stdout).unwrap();
    let hex = hex.trim().trim_start_matches("Modulus=");
    let n: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let jwks = json!({"keys": [{"kty": "RSA", "alg": "RS256", "kid": "k2", "use": "sig",
                                "n": B64URL.encode(&n), "e": "AQAB"}]});
    std::fs::write(d.join("jwks.json"), jwks.to_string()).unwrap();

    let base = BASE.replacen(
        "leeway_secs = 0\n",
        "leeway_secs = 0\njwks_file = \"jwks.json\"\n",
        1,
    );
    let config = format!(
        r#"{base}
[[auth.keys]]
algorithm = "RS256"
kid = "k1"
public_key_file = "rsa.pub.pem"
[[auth.keys]]
algorithm = "ES256"
public_key_file = "ec.pub.pem"
{DB}"#
    );
    let gw = Gateway::start_in(dir, &config).await;
    let d = gw.dir.path();
    let claims = json!({"sub": "ada", "roles": ["admin"], "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600});
    let read = |f: &str| std::fs::read(d.join(f)).unwrap();

    let mut h = jsonwebtoken::Header::new(Algorithm::RS256);
    h.kid = Some("k1".into());
    let rs = jsonwebtoken::encode(
        &h,
        &claims,
        &EncodingKey::from_rsa_pem(&read("rsa.pem")).unwrap(),
    )
    .unwrap();
    let es = sign(
        &claims,
        Algorithm::ES256,
        &EncodingKey::from_ec_pem(&read("ec8.pem")).unwrap(),
    );
    let mut h2 = jsonwebtoken::Header::new(Algorithm::RS256);
    h2.kid = Some("k2".into());
    let jw = jsonwebtoken::encode(
        &h2,
        &claims,
        &EncodingKey::from_rsa_pem(&read("rsa2.pem")).unwrap(),
    )
    .unwrap();
    for (what, t) in [("RS256", &rs), ("ES256", &es), ("JWKS RS256", &jw)] {
        let (s, v) = gw.get("/v1/databases", t).await;
        assert_eq!(s, StatusCode::OK, "{what}: {v}");
    }
    // The JWKS key under the PEM key's kid does not verify.
    let mut h3 = jsonwebtoken::Header::new(Algorithm::RS256);
    h3.kid = Some("k1".into());
    let wrong_kid = jsonwebtoken::encode(
        &h3,
        &claims,
        &EncodingKey::from_rsa_pem(&read("rsa2.pem")).unwrap(),
    )
    .unwrap();
    let (s, _) = gw.get("/v1/databases", &wrong_kid).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Key confusion: HS256 signed with the RSA public key as the secret.
    let confused = sign(
        &claims,
        Algorithm::HS256,
        &EncodingKey::from_secret(&read("rsa.pub.pem")).unwrap(),
    );
    let (s, v) = gw.get("/v1/databases", &confused).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
}
