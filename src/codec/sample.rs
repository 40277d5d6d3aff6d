//! The sample requests of each message size, deterministic from (size, id).
//!
//! The strings depend on the size only and the numbers on the id, drawn from ranges narrow
//! enough that every value, the sum and the reply's score keep the same number of decimal
//! digits and the same varint length for every id. So the only part of a message whose length
//! varies with the id is the id itself (`ClientCodec::request_len_for`).

use arrayvec::ArrayVec;

use super::{Inner, MessageSize, Request};

/// Every value is in `VALUE_BASE..VALUE_BASE + VALUE_SPAN`: 6 decimal digits, a 3-byte zigzag
/// varint, and with the value counts below a sum of fixed width too.
const VALUE_BASE: i64 = 100_000;
const VALUE_SPAN: u64 = 10_000;
/// The nested record's score is in `SCORE_BASE..SCORE_BASE + SCORE_SPAN`: 7 digits, and a
/// 4-byte zigzag varint (from 1_100_000 up: 1_000_000 would straddle the 3-byte limit).
const SCORE_BASE: i64 = 1_100_000;
const SCORE_SPAN: u64 = 100_000;

struct Shape {
    user: &'static str,
    method: &'static str,
    tags: &'static [&'static str],
    /// How many values. A count in 91..=99 would let the sum of 6-digit values straddle
    /// 10_000_000, and its width vary with the id.
    values: usize,
    name: &'static str,
    flags: u32,
}

const SMALL: Shape = Shape {
    user: "alice",
    method: "quote.get",
    tags: &["eu-west-1", "tier-gold"],
    values: 4,
    name: "portfolio",
    flags: 0x5,
};

const MEDIUM: Shape = Shape {
    user: "bob.smith@example.com",
    method: "inventory.reserve",
    tags: &[
        "eu-west-1",
        "tier-gold",
        "retry-safe",
        "idempotent",
        "batch-07",
        "canary",
    ],
    values: 32,
    name: "warehouse-frankfurt-3",
    flags: 0x15,
};

const LARGE: Shape = Shape {
    user: "carol.jones+analytics@research.example.org",
    method: "timeseries.aggregate.window",
    tags: &[
        "eu-west-1",
        "tier-platinum",
        "retry-safe",
        "idempotent",
        "batch-2024-11",
        "canary",
        "trace-sampled",
        "priority-high",
        "region-failover",
        "schema-v3",
    ],
    values: 110,
    name: "sensor-array-north-wing-floor-12",
    flags: 0x55,
};

fn shape(size: MessageSize) -> &'static Shape {
    match size {
        MessageSize::Small => &SMALL,
        MessageSize::Medium => &MEDIUM,
        MessageSize::Large => &LARGE,
    }
}

/// splitmix64's finaliser: a well-mixed number from (id, index) without any state.
fn mix(id: u64, index: u64) -> u64 {
    let mut z = id
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(index.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The request a client sends for `id` at `size`. Its strings are `'static`, so building one
/// allocates nothing.
pub fn request(size: MessageSize, id: u64) -> Request<'static> {
    let shape = shape(size);
    let mut tags = ArrayVec::new();
    tags.extend(shape.tags.iter().copied());
    let mut values = ArrayVec::new();
    // The spans are far below i64::MAX, so the casts are exact.
    values.extend((0..shape.values as u64).map(|i| VALUE_BASE + (mix(id, i) % VALUE_SPAN) as i64));
    Request {
        id,
        user: shape.user,
        method: shape.method,
        tags,
        values,
        nested: Inner {
            name: shape.name,
            score: SCORE_BASE + (mix(id, u64::MAX) % SCORE_SPAN) as i64,
            flags: shape.flags,
        },
    }
}
