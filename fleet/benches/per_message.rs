//! CPU cost of the fleet's own per-message work, without the network: generating a point,
//! encoding the payload, and the ledger's publish -> packet id -> PUBACK bookkeeping.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fleet::ledger::Ledger;
use fleet::motion::Walk;
use fleet::position::{encode_payload, Position, ENCODED_POINT_HINT};

fn points(n: usize) -> Vec<Position> {
    let mut w = Walk::new(1, (48.8566, 2.3522), 20_000.0);
    (0..n as i64)
        .map(|i| w.step(1_795_000_000_000 + i * 1000))
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("fleet");
    g.throughput(Throughput::Elements(1));
    let mut w = Walk::new(1, (48.8566, 2.3522), 20_000.0);
    let mut t = 1_795_000_000_000i64;
    g.bench_function("walk_step", |b| {
        b.iter(|| {
            t += 1000;
            black_box(w.step(t))
        })
    });

    for n in [1usize, 10] {
        let pts = points(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("encode_{n}_points"), |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(n * ENCODED_POINT_HINT + 2);
                encode_payload(black_box(&pts), &mut out);
                black_box(out)
            })
        });
    }

    // 1000 one-point messages through the whole ledger cycle, 10 in flight.
    g.throughput(Throughput::Elements(1000));
    g.bench_function("ledger_cycle_1000_messages", |b| {
        b.iter_batched_ref(
            || {
                let mut l = Ledger::new();
                for p in points(1000) {
                    l.push(p);
                }
                l
            },
            |l| {
                let now = Instant::now();
                let mut pkid = 0u16;
                let mut acked = 0u16;
                while let Some(batch) = l.take_batch(1, 50, false) {
                    l.sent(batch, now);
                    pkid += 1;
                    let _ = l.on_outgoing(pkid);
                    if l.messages_in_flight() >= 10 {
                        acked += 1;
                        let _ = l.on_ack(acked, now);
                    }
                }
                black_box(l.messages_in_flight())
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
