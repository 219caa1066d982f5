//! The config target: any text through the config loader.

use crate::routing::Router;
use std::path::Path;
use std::sync::Arc;

/// Loads `data` as a config file (relative paths from the working directory) and, when it is
/// valid, builds its route tables.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match crate::config::load_str(text, Path::new("fuzz.yaml")) {
        Ok(config) => {
            let names: Vec<Arc<str>> = config.listeners.iter().map(|l| l.name.clone()).collect();
            let _ = Router::new(&names, &config.routes);
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an error result without errors");
            // Lines as YAML counts them: CRLF, a lone CR and LF each end one (YAML 1.2 5.4),
            // and a position may point just past the last line.
            let bytes = text.as_bytes();
            let breaks = (0..bytes.len())
                .filter(|&i| bytes[i] == b'\n' || (bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
                .count();
            let lines = breaks + 2;
            for e in &errors.0 {
                if let Some((line, col)) = e.position {
                    assert!(line >= 1 && line <= lines, "line {line} outside the text ({lines} lines): {e}");
                    assert!(col >= 1, "column {col}: {e}");
                }
                let _ = e.to_string();
            }
        }
    }
}
