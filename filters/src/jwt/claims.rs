//! The verified token's claims: kept for later filters (`acl`) and copied into upstream request
//! headers (`forward_claims`).

use super::Jwt;
use crate::RequestHeader;
use http::HeaderValue;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

/// The claims of the verified token, put in [`RequestCtx::state`](crate::RequestCtx::state) for later filters (`acl`).
#[derive(Debug, Clone)]
pub struct JwtClaims(pub Arc<Value>);

impl JwtClaims {
    /// Wraps a claims object.
    pub fn new(claims: Value) -> Self {
        JwtClaims(Arc::new(claims))
    }

    /// The claim called `name`, if the token has it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
}

impl Jwt {
    /// Sets the `forward_claims` headers on the upstream request from `claims`, removing any
    /// the client sent.
    pub(super) fn forward_claims(
        &self,
        request: &mut RequestHeader,
        claims: Option<&JwtClaims>,
    ) -> pingora::Result<()> {
        for (claim, header) in &self.forward {
            request.remove_header(header);
            let value = match claims.and_then(|c| c.get(claim)) {
                Some(Value::String(s)) => Cow::Borrowed(s.as_str()),
                Some(Value::Number(n)) => Cow::Owned(n.to_string()),
                Some(Value::Bool(b)) => Cow::Borrowed(if *b { "true" } else { "false" }),
                _ => continue,
            };
            if let Ok(value) = HeaderValue::from_str(&value) {
                request.insert_header(header.clone(), value)?;
            }
        }
        Ok(())
    }
}
