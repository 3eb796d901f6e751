//! Properties of the decoder, checks and merge over generated profiles and mutated bytes:
//! decoding what was encoded gives it back, no input makes any of them panic, and a profile
//! merged with itself keeps its stacks and doubles its values.

use profefe_pprof::check::{check, totals};
use profefe_pprof::error::{guarded, Error};
use profefe_pprof::gz;
use profefe_pprof::merge::Merger;
use profefe_pprof::profile::Profile;
use profefe_pprof::wire::{put_bool, put_bytes, put_i64, put_packed, put_u64};

/// xorshift64*: deterministic, so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The raw protobuf of a valid random profile with `n_types` sample types.
fn generate(rng: &mut Rng, n_types: usize) -> Vec<u8> {
    let n_strings = 3 + rng.below(20) as i64;
    let n_functions = 1 + rng.below(15);
    let n_mappings = rng.below(3);
    let n_locations = 1 + rng.below(30);
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    let s = |rng: &mut Rng| rng.below(n_strings as u64) as i64;
    for _ in 0..n_types {
        let mut b = Vec::new();
        put_i64(&mut b, 1, s(rng));
        put_i64(&mut b, 2, s(rng));
        put_bytes(&mut out, 1, &b);
    }
    for _ in 0..rng.below(40) {
        let mut b = Vec::new();
        let stack: Vec<u64> = (0..1 + rng.below(8))
            .map(|_| 1 + rng.below(n_locations))
            .collect();
        put_packed(&mut b, 1, stack.iter().copied(), &mut scratch);
        let values: Vec<u64> = (0..n_types).map(|_| rng.below(5).wrapping_sub(1)).collect();
        put_packed(&mut b, 2, values.iter().copied(), &mut scratch);
        for _ in 0..rng.below(3) {
            let mut l = Vec::new();
            put_i64(&mut l, 1, s(rng));
            put_i64(&mut l, 2, s(rng));
            put_i64(&mut l, 3, rng.below(3) as i64);
            put_bytes(&mut b, 3, &l);
        }
        put_bytes(&mut out, 2, &b);
    }
    for id in 1..=n_mappings {
        let mut b = Vec::new();
        put_u64(&mut b, 1, id);
        put_u64(&mut b, 2, id << 20);
        put_u64(&mut b, 3, (id << 20) + rng.below(1 << 16));
        put_i64(&mut b, 5, s(rng));
        put_bool(&mut b, 7, rng.below(2) == 1);
        put_bytes(&mut out, 3, &b);
    }
    for id in 1..=n_locations {
        let mut b = Vec::new();
        put_u64(&mut b, 1, id);
        put_u64(&mut b, 2, rng.below(n_mappings + 1));
        put_u64(&mut b, 3, rng.below(1 << 24));
        for _ in 0..rng.below(3) {
            let mut l = Vec::new();
            put_u64(&mut l, 1, 1 + rng.below(n_functions));
            put_i64(&mut l, 2, rng.below(100) as i64);
            put_bytes(&mut b, 4, &l);
        }
        put_bytes(&mut out, 4, &b);
    }
    for id in 1..=n_functions {
        let mut b = Vec::new();
        put_u64(&mut b, 1, id);
        put_i64(&mut b, 2, s(rng));
        put_i64(&mut b, 4, s(rng));
        put_bytes(&mut out, 5, &b);
    }
    put_bytes(&mut out, 6, b"");
    for i in 1..n_strings {
        put_bytes(&mut out, 6, format!("s{}", i % 7).as_bytes());
    }
    put_i64(&mut out, 9, rng.below(1000) as i64);
    put_i64(&mut out, 10, rng.below(1000) as i64);
    let mut pt = Vec::new();
    put_i64(&mut pt, 1, s(rng));
    put_bytes(&mut out, 11, &pt);
    put_i64(&mut out, 12, rng.below(100) as i64);
    out
}

#[test]
fn generated_profiles_decode_and_pass_the_checks() {
    for seed in 1..400u64 {
        let mut rng = Rng(seed);
        let raw = generate(&mut rng, 1 + (seed % 3) as usize);
        let p = Profile::decode(&raw).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        check(&p).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        // The same bytes gzipped, in one member or two, read the same.
        let (a, b) = raw.split_at(raw.len() / 2);
        let mut two = gz::compress(a, 1);
        two.extend(gz::compress(b, 6));
        assert_eq!(
            &*gz::inflate(&two, usize::MAX).unwrap(),
            &raw[..],
            "seed {seed}"
        );
    }
}

#[test]
fn a_merge_round_trips_and_a_profile_merged_with_itself_doubles() {
    for seed in 1..300u64 {
        let mut rng = Rng(seed);
        let raw = generate(&mut rng, 2);
        let mut once = Merger::new();
        once.add_bytes(&raw, usize::MAX).unwrap();
        let merged = once.encode().unwrap();
        let mp = Profile::decode(&merged).unwrap();
        check(&mp).unwrap_or_else(|e| panic!("seed {seed}: merged output invalid: {e}"));

        let mut twice = Merger::new();
        twice.add_bytes(&raw, usize::MAX).unwrap();
        twice.add_bytes(&merged, usize::MAX).unwrap();
        let doubled = twice.encode().unwrap();
        let dp = Profile::decode(&doubled).unwrap();
        check(&dp).unwrap();
        assert_eq!(dp.samples.len(), mp.samples.len(), "seed {seed}");
        let (t1, t2) = (totals(&mp), totals(&dp));
        assert_eq!(
            t2,
            t1.iter().map(|v| v * 2).collect::<Vec<_>>(),
            "seed {seed}"
        );
        // Merging the merged profile alone changes nothing: the result is already compact.
        let mut again = Merger::new();
        again.add_bytes(&merged, usize::MAX).unwrap();
        assert_eq!(again.encode().unwrap(), merged, "seed {seed}");
    }
}

#[test]
fn mutated_bytes_never_panic() {
    for seed in 1..3000u64 {
        let mut rng = Rng(seed);
        let mut raw = generate(&mut rng, 1 + (seed % 2) as usize);
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(raw.len() as u64) as usize;
            match rng.below(4) {
                0 => raw[at] = rng.next() as u8,
                1 => raw[at] ^= 1 << rng.below(8),
                2 => raw.truncate(at),
                _ => raw.insert(at, rng.next() as u8),
            }
            if raw.is_empty() {
                break;
            }
        }
        let data = if seed % 5 == 0 {
            gz::compress(&raw, 1)
        } else {
            raw
        };
        let mut m = Merger::new();
        let _ = m.add_bytes(&data, 1 << 20);
        if let Some(out) = m.encode() {
            let p = Profile::decode(&out).unwrap();
            check(&p).unwrap_or_else(|e| panic!("seed {seed}: merged output invalid: {e}"));
        }
    }
}

#[test]
fn random_bytes_never_panic_and_corrupt_gzip_is_refused() {
    for seed in 1..3000u64 {
        let mut rng = Rng(seed);
        let mut data: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
        if seed % 3 == 0 {
            data.splice(0..0, [0x1f, 0x8b, 8, 0]);
        }
        if let Ok(raw) = gz::inflate(&data, 1 << 16) {
            if let Ok(p) = Profile::decode(&raw) {
                let _ = check(&p);
            }
        }
    }
}

#[test]
fn a_panic_becomes_a_malformed_profile() {
    let out: Result<(), Error> = guarded(|| panic!("index out of bounds"));
    match out {
        Err(Error::Malformed(reason)) => {
            assert!(reason.contains("internal error") && reason.contains("index out of bounds"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(guarded(|| Ok(7)), Ok(7));
}
