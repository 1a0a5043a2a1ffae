//! Every bound the protocol enforces, named once.
//!
//! A value that crosses a process boundary is checked against these before it is
//! used; a value built in process is asserted against them.

/// Most notaries a deal may name.
pub const NOTARIES_MAX: usize = 16;
/// Most observers a deal may name.
pub const OBSERVERS_MAX: usize = 8;
/// Most dependents a deal may name.
pub const DEPENDENTS_MAX: usize = 8;
/// Longest asset code, in bytes (an ERC-20 address in hex is 42).
pub const ASSET_CODE_LEN_MAX: usize = 64;
/// Longest address in bytes: a compressed secp256k1 key (33) fits.
pub const ADDRESS_LEN_MAX: usize = 33;
/// Largest canonical encoding of deal terms, in bytes.
pub const DEAL_TERMS_LEN_MAX: usize = 4096;
/// Largest encoded transaction, in bytes.
pub const TRANSACTION_LEN_MAX: usize = 8192;
/// Most signatures a certificate may carry.
pub const CERTIFICATE_SIGNATURES_MAX: usize = NOTARIES_MAX;
/// Shortest margin a hashlock deal may leave between the delivery and the payment
/// expiry, in milliseconds: the payment network's finality plus the seller's
/// reaction time must fit in it.
pub const HASHLOCK_MARGIN_MIN_MS: u64 = 100;
/// Shortest gap between the notaries' decision deadline and the reservations'
/// backstop expiry, in milliseconds.
pub const BACKSTOP_MARGIN_MIN_MS: u64 = 100;
/// How long a saga waits for a submitted transaction to show up before it submits
/// it again, in milliseconds.
pub const RESUBMIT_AFTER_MS: u64 = 500;
/// Most asset codes a policy's allow-list may name.
pub const ALLOWED_ASSETS_MAX: usize = 16;
/// Longest extension an extend-once timeout policy may grant, in milliseconds.
pub const EXTENSION_MAX_MS: u64 = 24 * 3_600_000;
/// One UTC day, in milliseconds: the period of a policy's per-day limit.
pub const DAY_MS: u64 = 24 * 3_600_000;
/// Shortest inspection window a policy may set, in milliseconds.
pub const INSPECTION_WINDOW_MIN_MS: u64 = 1_000;
/// Longest inspection window a policy may set, in milliseconds: ninety days.
pub const INSPECTION_WINDOW_MAX_MS: u64 = 90 * DAY_MS;
/// Longest reason a dispute may give, in bytes.
pub const DISPUTE_REASON_LEN_MAX: usize = 1_024;
