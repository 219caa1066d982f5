//! `consumers`: the known callers that `api_key`, `basic_auth` and `jwt` identify, and that
//! `acl` and `rate_limit` key on.

use crate::config::file::ConsumerFile;
use crate::config::Errors;
use portico_filters::context::BasicCredentials;
use portico_filters::Consumer;
use std::collections::HashSet;
use std::sync::Arc;

/// Every consumer, names unique.
pub(super) fn consumers(list: Vec<ConsumerFile>, errors: &mut Errors<'_>) -> Vec<Arc<Consumer>> {
    let mut names = HashSet::new();
    list.into_iter()
        .enumerate()
        .map(|(i, c)| {
            if !names.insert(c.name.clone()) {
                errors.at(format!("consumers[{i}].name"), format!("duplicate consumer name \"{}\"", c.name));
            }
            Arc::new(Consumer {
                name: c.name,
                api_keys: c.api_keys,
                basic: c.basic.map(|b| BasicCredentials { username: b.username, password_hash: b.password_hash }),
                groups: c.groups,
            })
        })
        .collect()
}
