//! `compression`: compresses responses (gzip, brotli, zstd, by the client's `Accept-Encoding`)
//! with Pingora's own response-compression module, switched on for the routes that ask.
//!
//! ```yaml
//! - compression: {level: 6}
//! ```

use crate::{BuildContext, BuildError, Filter, FilterFactory, Flow, RequestCtx, Session};
use async_trait::async_trait;
use pingora::modules::http::compression::ResponseCompression;
use serde::Deserialize;

/// The `compression` filter's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionConfig {
    /// Compression level, 1 (fast) to 9 (small); default 6.
    #[serde(default = "six")]
    pub level: u32,
}

fn six() -> u32 {
    6
}

/// The `compression` filter.
#[derive(Debug)]
pub struct Compression {
    level: u32,
}

impl FilterFactory for Compression {
    const NAME: &'static str = "compression";
    type Config = CompressionConfig;

    fn build(c: CompressionConfig, _cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        if !(1..=9).contains(&c.level) {
            return Err(BuildError::at("level", "a level is between 1 and 9"));
        }
        Ok(Compression { level: c.level })
    }
}

#[async_trait]
impl Filter for Compression {
    async fn request(&self, session: &mut Session, _ctx: &mut RequestCtx) -> pingora::Result<Flow> {
        // The module read `Accept-Encoding` before this phase only if it was already on, so it
        // reads it again once switched on.
        let req = session.downstream_session.req_header();
        if let Some(c) = session.downstream_modules_ctx.get_mut::<ResponseCompression>() {
            c.adjust_level(self.level);
            c.request_filter(req);
        }
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn level_is_checked() {
        let cx = testkit::context();
        assert!(Compression::build(CompressionConfig { level: 0 }, &cx).is_err());
        assert!(Compression::build(CompressionConfig { level: 6 }, &cx).is_ok());
    }
}
