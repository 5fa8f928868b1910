//! Scheme-to-driver registry: how a URL finds its [`Driver`].
//!
//! There is no global state: the facade builds a [`Registry`] from the cargo
//! features that are enabled, and users add their own [`Driver`]s to it.

use crate::database::Database;
use crate::driver::Driver;
use crate::error::{Error, ErrorKind, Result};
use crate::options::ConnectOptions;
use std::fmt;
use std::sync::Arc;

/// Maps URL schemes to drivers.
#[derive(Clone, Default)]
pub struct Registry {
    drivers: Vec<Arc<dyn Driver>>,
    hints: Vec<(&'static str, &'static str)>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("schemes", &self.schemes())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Add a driver. A later driver for the same scheme takes precedence, so
    /// users can replace a built-in one.
    pub fn register(&mut self, driver: impl Driver) -> &mut Self {
        self.drivers.push(Arc::new(driver));
        self
    }

    /// Add a shared driver.
    pub fn register_arc(&mut self, driver: Arc<dyn Driver>) -> &mut Self {
        self.drivers.push(driver);
        self
    }

    /// Remember that `scheme` is served by a driver behind a cargo `feature`
    /// that is not enabled, so connecting to it says which feature to turn on.
    pub fn hint_feature(&mut self, scheme: &'static str, feature: &'static str) -> &mut Self {
        self.hints.push((scheme, feature));
        self
    }

    /// Every scheme a driver serves, sorted.
    pub fn schemes(&self) -> Vec<&'static str> {
        let mut all: Vec<_> = self
            .drivers
            .iter()
            .flat_map(|d| d.schemes().iter().copied())
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The driver for a scheme, or an error listing the available schemes.
    pub fn driver(&self, scheme: &str) -> Result<&Arc<dyn Driver>> {
        let scheme = scheme.to_ascii_lowercase();
        if let Some(d) = self
            .drivers
            .iter()
            .rev()
            .find(|d| d.schemes().contains(&scheme.as_str()))
        {
            return Ok(d);
        }
        let available = match self.schemes() {
            s if s.is_empty() => "none (enable a dbx cargo feature)".to_owned(),
            s => s.join(", "),
        };
        let msg = match self.hints.iter().find(|(s, _)| *s == scheme) {
            Some((_, feature)) => format!(
                "scheme `{scheme}` needs the dbx cargo feature `{feature}`, which is not enabled \
                 (cargo add dbx --features {feature}); available schemes: {available}"
            ),
            None => format!("unknown scheme `{scheme}`; available schemes: {available}"),
        };
        Err(Error::new(ErrorKind::InvalidConfig, msg))
    }

    /// Parse `url` and connect.
    pub async fn connect(&self, url: &str) -> Result<Database> {
        self.connect_with(ConnectOptions::from_url(url)?).await
    }

    /// Connect with prepared options. The whole connect is bounded by the
    /// options' connect timeout.
    pub async fn connect_with(&self, options: ConnectOptions) -> Result<Database> {
        let driver = self.driver(options.scheme())?;
        options
            .check_params(driver.name(), driver.params())
            .and_then(|()| options.policy().validate())
            .map_err(|e| e.with_backend(driver.name()).with_operation("connect"))?;
        let limit = options.connect_timeout();
        let backend = match tokio::time::timeout(limit, driver.connect(&options)).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("connecting did not finish within {limit:?}"),
            )),
        }
        .map_err(|e| e.with_backend(driver.name()).with_operation("connect"))?;
        Ok(Database::new(backend, options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::Backend;
    use async_trait::async_trait;
    use std::sync::Arc;

    #[derive(Debug)]
    struct Dummy;

    #[async_trait]
    impl Driver for Dummy {
        fn name(&self) -> &'static str {
            "dummy"
        }
        fn schemes(&self) -> &'static [&'static str] {
            &["dummy", "dummy+tls"]
        }
        async fn connect(&self, _: &ConnectOptions) -> Result<Arc<dyn Backend>> {
            Err(Error::new(ErrorKind::Connect, "dummy never connects"))
        }
    }

    #[tokio::test]
    async fn unknown_scheme_lists_available_ones() {
        let mut r = Registry::new();
        r.register(Dummy).hint_feature("redis", "redis");
        let e = r.connect("nope://x").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("unknown scheme `nope`"), "{e}");
        assert!(e.to_string().contains("dummy, dummy+tls"), "{e}");
        let e = r.connect("redis://localhost").await.unwrap_err();
        assert!(e.to_string().contains("cargo feature `redis`"), "{e}");
        let e = r.connect("dummy://x?bogus=1").await.unwrap_err();
        assert!(e.to_string().contains("unknown parameter `bogus`"), "{e}");
        let e = r.connect("DUMMY://x").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Connect);
        assert_eq!(e.operation(), Some("connect"));
    }

    #[tokio::test]
    async fn empty_registry_says_so() {
        let e = Registry::new()
            .connect("sqlite::memory:")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("enable a dbx cargo feature"), "{e}");
    }
}
