//! `x-cache-status`: what the cache did for a response, in nginx's words
//! (`$upstream_cache_status`).

use http::HeaderValue;
use pingora::cache::{CachePhase, NoCacheReason};

/// What the cache did for one response of a cached route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from the cache, fresh.
    Hit,
    /// Not in the cache (or not storable): fetched from the origin.
    Miss,
    /// In the cache but stale: fetched again in full.
    Expired,
    /// Stale, served because the origin failed (stale-if-error).
    Stale,
    /// Stale, served at once while another request refreshes it (stale-while-revalidate).
    Updating,
    /// Stale, and the origin said (304) it is still good.
    Revalidated,
    /// The cache was not used for this request (a method or request it does not serve).
    Bypass,
}

impl CacheStatus {
    /// Every status, in `as usize` order.
    pub const ALL: [CacheStatus; 7] = [
        CacheStatus::Hit,
        CacheStatus::Miss,
        CacheStatus::Expired,
        CacheStatus::Stale,
        CacheStatus::Updating,
        CacheStatus::Revalidated,
        CacheStatus::Bypass,
    ];

    /// The status of a request whose cache ended in `phase`.
    pub fn of(phase: CachePhase) -> Self {
        match phase {
            CachePhase::Hit => CacheStatus::Hit,
            CachePhase::Stale => CacheStatus::Stale,
            CachePhase::StaleUpdating => CacheStatus::Updating,
            CachePhase::Expired => CacheStatus::Expired,
            CachePhase::Revalidated | CachePhase::RevalidatedNoCache(_) => CacheStatus::Revalidated,
            CachePhase::Disabled(NoCacheReason::NeverEnabled | NoCacheReason::Deferred) | CachePhase::Bypass => {
                CacheStatus::Bypass
            }
            // Looked up, not found or not storable (no-store, too large, a lock that timed out).
            CachePhase::Miss | CachePhase::Disabled(_) | CachePhase::Uninit | CachePhase::CacheKey => CacheStatus::Miss,
        }
    }

    /// As nginx spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Expired => "EXPIRED",
            CacheStatus::Stale => "STALE",
            CacheStatus::Updating => "UPDATING",
            CacheStatus::Revalidated => "REVALIDATED",
            CacheStatus::Bypass => "BYPASS",
        }
    }

    /// The `x-cache-status` value.
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(self.as_str())
    }
}
