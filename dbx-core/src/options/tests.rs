//! Unit tests of `options`.
use super::*;
use crate::ErrorKind;

#[test]
fn parses_full_url() {
    let o = ConnectOptions::from_url(
        "redis://ada:s%40cret@cache.local:6380/2?pool_max_size=8&timeout=250ms&client=x",
    )
    .unwrap();
    assert_eq!(o.scheme(), "redis");
    assert_eq!(o.username(), Some("ada"));
    assert_eq!(o.password().unwrap().expose(), "s@cret");
    assert_eq!(o.host(), "cache.local");
    assert_eq!(o.port(), Some(6380));
    assert_eq!(o.path(), "/2");
    assert_eq!(o.pool_max_size(), Some(8));
    assert_eq!(o.timeout(), Duration::from_millis(250));
    assert_eq!(o.param("client"), Some("x"));
}

#[test]
fn parses_file_forms() {
    let m = ConnectOptions::from_url("sqlite::memory:").unwrap();
    assert!(!m.has_authority());
    assert_eq!(m.path(), ":memory:");
    let r = ConnectOptions::from_url("sqlite:data/app.db?timeout=1s").unwrap();
    assert_eq!(r.path(), "data/app.db");
    let a = ConnectOptions::from_url("sqlite:///var/lib/app.db").unwrap();
    assert_eq!((a.host(), a.path()), ("", "/var/lib/app.db"));
    let rel = ConnectOptions::from_url("sqlite://data/app.db").unwrap();
    assert_eq!((rel.host(), rel.path()), ("data", "/app.db"));
}

#[test]
fn host_lists_keep_their_ports() {
    let o = ConnectOptions::from_url("mongodb://a:27017,b:27018,[::1]:27019/db").unwrap();
    assert_eq!((o.host(), o.port()), ("a:27017,b:27018,[::1]", Some(27019)));
    let o = ConnectOptions::from_url("mongodb://a,b/db").unwrap();
    assert_eq!((o.host(), o.port()), ("a,b", None));
    // Shown as written (a list is not an IPv6 address), password hidden.
    for url in [
        "postgres://u:pw@h1:5432,h2:1/db",
        "mongodb://a:27017,b:27018,[::1]:27019/db",
        "redis+cluster://10.0.0.1:7000,10.0.0.2",
    ] {
        let o = ConnectOptions::from_url(url).unwrap();
        assert_eq!(o.to_string(), url.replace(":pw@", ":***@"));
        let again = ConnectOptions::from_url(&o.to_string().replace("***", "pw")).unwrap();
        assert_eq!(again.hosts(1).unwrap(), o.hosts(1).unwrap(), "{url}");
    }
}

#[test]
fn ipv6_host() {
    let o = ConnectOptions::from_url("redis://[::1]:6379").unwrap();
    assert_eq!((o.host(), o.port()), ("::1", Some(6379)));
    assert_eq!(o.to_string(), "redis://[::1]:6379");
}

#[test]
fn malformed_urls_are_invalid_config_naming_the_part() {
    let cases = [
        ("", "no scheme"),
        ("no-scheme-here", "no scheme"),
        ("1abc://x", "scheme"),
        ("redis://host:notaport", "port"),
        ("redis://host:0", "port"),
        ("redis://host:70000", "port"),
        ("redis://[::1", "`]`"),
        ("redis://h/%zz", "percent-encoding"),
        ("redis://h?timeout=soon", "timeout"),
        ("redis://h?timeout=0s", "timeout must be above zero"),
        ("redis://h?pool_max_size=0", "pool_max_size"),
        ("redis://h?pool_max_size=-3", "pool_max_size"),
        ("redis://h?a=1&a=2", "more than once"),
        ("redis://h?=1", "empty name"),
        ("postgres://host:5432:5432/db", "has a port already"),
        ("redis://::1", "IPv6 addresses in brackets"),
        ("mongodb://a:1,b:x:2/db", "not followed by a port"),
        ("postgres://u@h/app%00db", "path contains a NUL byte"),
        ("postgres://h/db?application_name=a%00b", "NUL byte"),
        ("postgres://u%00x@h/db", "user name contains a NUL byte"),
        ("postgres://h/a\0b", "NUL byte"),
    ];
    for (url, needle) in cases {
        let e = ConnectOptions::from_url(url).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
        assert!(e.to_string().contains(needle), "{url}: {e}");
    }
}

#[test]
fn passwords_never_shown() {
    let o = ConnectOptions::from_url(
        "postgres://app:hunter2@db:5432/app?sslpassword=topsecret&api_key=k3y&application_name=web",
    )
    .unwrap();
    for shown in [o.to_string(), format!("{o:?}"), format!("{o:#?}")] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("topsecret"), "{shown}");
        assert!(!shown.contains("k3y"), "{shown}");
        assert!(shown.contains("application_name"), "{shown}");
    }
    assert_eq!(
        o.to_string(),
        "postgres://app:***@db:5432/app?sslpassword=***&api_key=***&application_name=web"
    );
    let bad = ConnectOptions::from_url("redis://u:hunter%zz2@h").unwrap_err();
    assert!(!bad.to_string().contains("hunter"), "{bad}");
}

#[test]
fn unknown_params_are_named() {
    let o = ConnectOptions::from_url("sqlite::memory:?journal=wal&bogus=1").unwrap();
    let e = o.check_params("sqlite", &["journal"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("`bogus`"), "{e}");
    assert!(e.to_string().contains("journal"), "{e}");
}

#[test]
fn durations() {
    assert_eq!(parse_duration("t", "5").unwrap(), Duration::from_secs(5));
    assert_eq!(
        parse_duration("t", "1.5s").unwrap(),
        Duration::from_millis(1500)
    );
    assert_eq!(parse_duration("t", "2m").unwrap(), Duration::from_secs(120));
    assert_eq!(
        parse_duration("t", "250ms").unwrap(),
        Duration::from_millis(250)
    );
    for bad in ["", "ms", "-1s", "5 parsecs", "1e400", "NaN"] {
        assert!(parse_duration("t", bad).is_err(), "{bad}");
    }
}

#[test]
fn setters_validate() {
    let mut o = ConnectOptions::new("sqlite");
    assert!(o.set_timeout(Duration::ZERO).is_err());
    assert!(o.set_pool_max_size(MAX_POOL_SIZE + 1).is_err());
    o.set_pool_max_size(3)
        .unwrap()
        .set_timeout(Duration::from_secs(1))
        .unwrap();
    assert_eq!(o.pool_max_size(), Some(3));
    assert_eq!(o.param_bool("x").unwrap(), None);
    o.set_param("x", "maybe").unwrap();
    assert!(o.param_bool("x").is_err());
}

#[test]
fn host_lists() {
    let hosts = |url: &str| ConnectOptions::from_url(url).unwrap().hosts(7000);
    assert_eq!(hosts("redis://h").unwrap(), [("h".to_owned(), 7000)]);
    assert_eq!(hosts("redis://h:1").unwrap(), [("h".to_owned(), 1)]);
    assert_eq!(hosts("redis://[::1]:2/").unwrap(), [("::1".to_owned(), 2)]);
    assert_eq!(
        hosts("redis+cluster://a:1,b,c:3/x").unwrap(),
        [
            ("a".to_owned(), 1),
            ("b".to_owned(), 7000),
            ("c".to_owned(), 3)
        ]
    );
    assert_eq!(
        hosts("postgres://a,[::1]:5,b").unwrap(),
        [
            ("a".to_owned(), 7000),
            ("::1".to_owned(), 5),
            ("b".to_owned(), 7000)
        ]
    );
    for (url, needle) in [
        ("redis+cluster://a:1,,b:2", "empty entry"),
        ("redis+cluster://a:1,b:2,", "empty entry"),
        ("redis+cluster://a:1,a:1", "twice"),
        ("redis+cluster://a,a", "twice"),
        ("redis+cluster:///x", "no host"),
    ] {
        let e = hosts(url).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidConfig, "{url}");
        assert!(e.to_string().contains(needle), "{url}: {e}");
    }
    // Distinct ports of one host are distinct nodes.
    assert_eq!(hosts("redis+cluster://a:1,a:2").unwrap().len(), 2);
}
