//! The span model: plain data, cheap to build on the request path.
//!
//! Ids are integers (a W3C trace id is 16 bytes, a span id 8), times are Unix nanoseconds, and
//! attribute keys are `&'static str` (every key Portico writes is a semantic-convention name
//! known at compile time), so a recorded span costs a few small allocations and no formatting.
//! Nothing here is built at all for a request that is not sampled.

use std::borrow::Cow;
use std::sync::Arc;

/// What a span stands for, as OTLP's `Span.SpanKind` numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// Work inside Portico.
    Internal = 1,
    /// A request Portico served.
    Server = 2,
    /// A request Portico sent upstream.
    Client = 3,
}

/// A span's outcome, as OTLP's `Status.StatusCode` numbers it.
///
/// The HTTP semantic conventions leave a server span `Unset` below 500 and a client span `Unset`
/// below 400; `Ok` is for spans an operator marks as such, which Portico never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusCode {
    /// No judgement (the default).
    #[default]
    Unset = 0,
    /// Explicitly successful.
    Ok = 1,
    /// Failed.
    Error = 2,
}

/// An attribute value. Text is borrowed when static, shared when the config already holds it
/// (route and upstream names are `Arc<str>`), and owned only when made for this request.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A compile-time string.
    Static(&'static str),
    /// A string shared with the config.
    Shared(Arc<str>),
    /// A string made for this span.
    Owned(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

impl Value {
    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Static(s) => Some(s),
            Value::Shared(s) => Some(s),
            Value::Owned(s) => Some(s),
            Value::Int(_) | Value::Bool(_) => None,
        }
    }
}

impl From<&'static str> for Value {
    fn from(s: &'static str) -> Self {
        Value::Static(s)
    }
}

impl From<Arc<str>> for Value {
    fn from(s: Arc<str>) -> Self {
        Value::Shared(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Owned(s)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

/// One attribute: a semantic-convention key and its value.
pub type Attribute = (&'static str, Value);

/// Something that happened at a point in a span (a filter refusal, a retry decision).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When, in Unix nanoseconds.
    pub time_unix_nano: u64,
    /// The event's name.
    pub name: &'static str,
    /// Its attributes.
    pub attributes: Vec<Attribute>,
}

/// One finished (or finishing) span, as the exporter encodes it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanData {
    /// The trace id; never zero.
    pub trace_id: u128,
    /// This span's id; never zero.
    pub span_id: u64,
    /// The parent span's id, 0 for a root span.
    pub parent_span_id: u64,
    /// Whether the parent is in another process (an incoming `traceparent`).
    pub parent_is_remote: bool,
    /// The W3C `tracestate` the trace came with, passed on unchanged.
    pub trace_state: Option<Arc<str>>,
    /// The span's name (`GET users`: the method and the route).
    pub name: Cow<'static, str>,
    /// Server, client or internal.
    pub kind: SpanKind,
    /// Start, Unix nanoseconds.
    pub start_unix_nano: u64,
    /// End, Unix nanoseconds.
    pub end_unix_nano: u64,
    /// Attributes, semantic-convention keys.
    pub attributes: Vec<Attribute>,
    /// Events, in the order they happened.
    pub events: Vec<Event>,
    /// The outcome.
    pub status: StatusCode,
    /// A short explanation when `status` is `Error`.
    pub status_message: Option<Cow<'static, str>>,
}

impl SpanData {
    /// A span with no attributes yet, started at `start_unix_nano`.
    pub fn new(trace_id: u128, span_id: u64, name: impl Into<Cow<'static, str>>, kind: SpanKind, start: u64) -> Self {
        SpanData {
            trace_id,
            span_id,
            parent_span_id: 0,
            parent_is_remote: false,
            trace_state: None,
            name: name.into(),
            kind,
            start_unix_nano: start,
            end_unix_nano: start,
            attributes: Vec::new(),
            events: Vec::new(),
            status: StatusCode::Unset,
            status_message: None,
        }
    }

    /// The value of attribute `key`, if set.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Sets attribute `key`, replacing an earlier value.
    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        let value = value.into();
        match self.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.attributes.push((key, value)),
        }
    }
}
