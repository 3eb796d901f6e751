//! The native merge alone, for counting its instructions (callgrind) or timing it: N real CPU
//! fixtures (tests/testdata/cpu-*.pb.gz, cycled) inflated, decoded, checked and folded, then the
//! result encoded and gzipped; or one step of that alone.
//!
//!     cargo run --release --example merge_cost -- 200 [merge|inflate|decode|write]
//!     valgrind --tool=callgrind target/release/examples/merge_cost 200 merge

use std::time::Instant;

use profefe_pprof::{check::check, gz, merge::Merger, profile::Profile};

const LIMIT: usize = 64 << 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let step = args.get(2).map_or("merge", String::as_str);
    let testdata = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/testdata");
    let files: Vec<Vec<u8>> = (1..=10)
        .map(|i| std::fs::read(format!("{testdata}/cpu-{i}.pb.gz")).expect("the CPU fixtures"))
        .collect();
    let started = Instant::now();
    match step {
        "inflate" => {
            let bytes: usize = (0..n)
                .map(|i| gz::inflate(&files[i % 10], LIMIT).unwrap().len())
                .sum();
            println!("inflated {n} profiles, {bytes} bytes");
        }
        "decode" => {
            let raws: Vec<Vec<u8>> = files
                .iter()
                .map(|f| gz::inflate(f, LIMIT).unwrap().into_owned())
                .collect();
            for i in 0..n {
                check(&Profile::decode(&raws[i % 10]).unwrap()).unwrap();
            }
            println!("decoded and checked {n} profiles");
        }
        "write" => {
            // An hour's window: 20 profiles merged, written n times.
            let mut m = Merger::new();
            for f in files.iter().cycle().take(20) {
                m.add_bytes(f, LIMIT).unwrap();
            }
            let raw = m.encode().unwrap();
            let t = Instant::now();
            let size = (0..n)
                .map(|_| gz::compress(&m.encode().unwrap(), 1).len())
                .last()
                .unwrap_or(0);
            println!(
                "window of {} raw bytes, {size} gzip, {:?} per encode + gzip",
                raw.len(),
                t.elapsed() / n.max(1) as u32
            );
        }
        _ => {
            let mut m = Merger::new();
            for i in 0..n {
                m.add_bytes(&files[i % 10], LIMIT).unwrap();
            }
            let added = started.elapsed();
            let out = gz::compress(&m.encode().unwrap(), 1);
            println!(
                "merged {n} profiles: add {:?} per profile, {} gzip bytes",
                added / n.max(1) as u32,
                out.len()
            );
        }
    }
    println!("total {:?}", started.elapsed());
}
