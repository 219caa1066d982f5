//! gRPC status codes, and the one mapping from an HTTP status to the code a gRPC client sees
//! (used by the core for Portico's own answers and by the `grpc_web` filter for an upstream
//! that answered with plain HTTP).

use http::HeaderValue;

/// A gRPC status code (`grpc-status`), as `grpc/doc/statuscodes.md` numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Code {
    /// 0: not an error.
    Ok = 0,
    /// 1: the caller cancelled.
    Cancelled = 1,
    /// 2: an error with no better code.
    Unknown = 2,
    /// 3: the request is wrong whatever the server's state.
    InvalidArgument = 3,
    /// 4: the deadline passed before the call finished.
    DeadlineExceeded = 4,
    /// 5: something asked for was not found.
    NotFound = 5,
    /// 6: something to create exists already.
    AlreadyExists = 6,
    /// 7: the caller is known and not allowed.
    PermissionDenied = 7,
    /// 8: a quota or limit is exhausted (rate limit, message too large).
    ResourceExhausted = 8,
    /// 9: the system is not in a state that allows the call.
    FailedPrecondition = 9,
    /// 10: the call was aborted (a concurrency conflict).
    Aborted = 10,
    /// 11: past the valid range.
    OutOfRange = 11,
    /// 12: the method is not implemented or not routed.
    Unimplemented = 12,
    /// 13: an internal error.
    Internal = 13,
    /// 14: the service is unavailable for now; a retry may work.
    Unavailable = 14,
    /// 15: data was lost.
    DataLoss = 15,
    /// 16: no valid credentials.
    Unauthenticated = 16,
}

/// Every code, in number order.
const ALL: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

/// `grpc-status` values "0" to "16", made once so a header costs no allocation.
const DIGITS: [&str; 17] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16"];

impl Code {
    /// The code for a number, if it is one.
    pub fn from_u8(n: u8) -> Option<Code> {
        ALL.get(usize::from(n)).copied()
    }

    /// The code a `grpc-status` header value carries.
    pub fn from_header(v: &HeaderValue) -> Option<Code> {
        std::str::from_utf8(v.as_bytes()).ok()?.trim().parse::<u8>().ok().and_then(Code::from_u8)
    }

    /// The code's snake-case name, as `retry.on` spells it (`unavailable`, `resource_exhausted`).
    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "ok",
            Code::Cancelled => "cancelled",
            Code::Unknown => "unknown",
            Code::InvalidArgument => "invalid_argument",
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::PermissionDenied => "permission_denied",
            Code::ResourceExhausted => "resource_exhausted",
            Code::FailedPrecondition => "failed_precondition",
            Code::Aborted => "aborted",
            Code::OutOfRange => "out_of_range",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::DataLoss => "data_loss",
            Code::Unauthenticated => "unauthenticated",
        }
    }

    /// The code called `name` ([`Code::name`]).
    pub fn from_name(name: &str) -> Option<Code> {
        ALL.iter().copied().find(|c| c.name() == name)
    }

    /// The code as a `grpc-status` value.
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(DIGITS[self as usize])
    }

    /// The code as decimal text (a metric label).
    pub fn as_str(self) -> &'static str {
        DIGITS[self as usize]
    }

    /// The code for an HTTP status that is not gRPC's own answer: gRPC's mapping
    /// (`grpc/doc/http-grpc-status-mapping.md`, as Envoy applies it), with the statuses Portico
    /// answers with made precise: 413 and 429 are limits, 504 a deadline, 500 internal.
    pub fn from_http(status: u16) -> Code {
        match status {
            200..=299 => Code::Unknown,
            400 | 431 => Code::InvalidArgument,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 | 405 | 501 => Code::Unimplemented,
            413 | 429 => Code::ResourceExhausted,
            500 => Code::Internal,
            502 | 503 => Code::Unavailable,
            504 => Code::DeadlineExceeded,
            300..=399 => Code::FailedPrecondition,
            _ => Code::Unknown,
        }
    }
}

/// `grpc-message` as gRPC percent-encodes it: every byte outside printable ASCII, and `%`.
pub fn encode_message(message: &str) -> HeaderValue {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&out).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether a `content-type` value is gRPC's (`application/grpc`, `+proto`, `-web`, `-web-text`).
pub fn is_grpc_content_type(v: &[u8]) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    v.len() >= GRPC.len()
        && v[..GRPC.len()].eq_ignore_ascii_case(GRPC)
        && matches!(v.get(GRPC.len()), None | Some(b'+' | b'-' | b';'))
}
