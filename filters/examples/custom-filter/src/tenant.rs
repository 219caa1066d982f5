//! `tenant`: refuses requests that do not name an allowed tenant, and tells the upstream which
//! tenant it serves.
//!
//! ```yaml
//! - tenant: {allow: [acme, globex], header: x-tenant, forward_as: x-tenant-id,
//!            upstream_token: "${TENANT_UPSTREAM_TOKEN}"}
//! ```

use http::{HeaderName, HeaderValue};
use portico_filters::{
    BuildContext, BuildError, Filter, FilterFactory, Flow, Reject, RequestCtx, RequestHeader, Session,
};
use serde::Deserialize;

/// The `tenant` filter's config: typed, and a key it does not know is an error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// The tenants let through.
    allow: Vec<String>,
    /// The request header in which a client names its tenant; `x-tenant` by default.
    #[serde(default = "default_header")]
    header: String,
    /// The header in which the upstream gets the checked tenant; `x-tenant-id` by default.
    #[serde(default = "default_forward_as")]
    forward_as: String,
    /// Sent upstream as `x-tenant-token`, so the upstream knows the gateway checked the tenant.
    upstream_token: Option<String>,
}

fn default_header() -> String {
    "x-tenant".into()
}

fn default_forward_as() -> String {
    "x-tenant-id".into()
}

/// Built once per config load and shared by every request: names and values are parsed here,
/// so a request costs one header lookup and a comparison per allowed tenant.
pub struct Tenant {
    header: HeaderName,
    forward_as: HeaderName,
    allow: Vec<HeaderValue>,
    token: Option<HeaderValue>,
}

/// The tenant the request phase let through, for the upstream phase: filters are shared, so
/// per-request state goes in the request's context.
#[derive(Clone)]
struct Checked(HeaderValue);

impl FilterFactory for Tenant {
    const NAME: &'static str = "tenant";
    const SECRET_FIELDS: &'static [&'static str] = &["upstream_token"];
    type Config = TenantConfig;

    fn build(config: TenantConfig, _cx: &BuildContext<'_>) -> Result<Self, BuildError> {
        if config.allow.is_empty() {
            return Err(BuildError::at("allow", "list at least one tenant"));
        }
        let allow = config.allow.iter().enumerate().map(|(i, t)| value(format!("allow[{i}]"), t));
        Ok(Tenant {
            header: name("header", &config.header)?,
            forward_as: name("forward_as", &config.forward_as)?,
            allow: allow.collect::<Result<_, _>>()?,
            token: config.upstream_token.as_deref().map(|t| value("upstream_token", t)).transpose()?,
        })
    }
}

/// A header name from the config, or an error at its field.
fn name(field: &str, s: &str) -> Result<HeaderName, BuildError> {
    HeaderName::try_from(s).map_err(|_| BuildError::at(field, "not a header name"))
}

/// A header value from the config, or an error at its field.
fn value(field: impl Into<String>, s: &str) -> Result<HeaderValue, BuildError> {
    HeaderValue::try_from(s).map_err(|_| BuildError::at(field, "not a header value"))
}

impl Tenant {
    /// The allowed tenant a request names, or the refusal the client gets.
    fn check(&self, named: Option<&HeaderValue>) -> Result<HeaderValue, Reject> {
        let Some(named) = named else {
            let message = format!("name your tenant in the {} header", self.header);
            return Err(Reject::new(400, "tenant_required", message));
        };
        let allowed = self.allow.iter().find(|t| *t == named);
        allowed.cloned().ok_or_else(|| Reject::new(403, "unknown_tenant", "this tenant is not served here"))
    }
}

#[async_trait::async_trait]
impl Filter for Tenant {
    async fn request(&self, session: &mut Session, ctx: &mut RequestCtx) -> portico_filters::Result<Flow> {
        match self.check(session.req_header().headers.get(&self.header)) {
            Ok(tenant) => {
                ctx.state.insert(Checked(tenant));
                Ok(Flow::Continue)
            }
            Err(refusal) => Ok(Flow::Reject(refusal)),
        }
    }

    fn upstream_request(&self, request: &mut RequestHeader, ctx: &mut RequestCtx) -> portico_filters::Result<()> {
        if let Some(Checked(tenant)) = ctx.state.get::<Checked>() {
            request.insert_header(self.forward_as.clone(), tenant.clone())?;
        }
        if let Some(token) = &self.token {
            request.insert_header("x-tenant-token", token.clone())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
